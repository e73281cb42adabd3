import CLinux
import Config
import Glibc
import Logging
import Proxy
import Runtime
import TLS

/// `workers N` (N > 1): this process binds every listener once and keeps them for its whole life,
/// and runs N workers, each the one-thread proxy of `workers 1`, on them. Workers are this same
/// executable started with posix_spawn (never fork from a Swift process) and the listening
/// sockets as inherited descriptors. One thread here too: a blocking poll on a signalfd and the
/// pipes on which new workers say they are ready.
///
/// Each worker slot has its own listening socket per address, bound with SO_REUSEPORT, so the
/// kernel spreads new connections evenly over the slots (one listener shared by every worker's
/// epoll wakes them last-in-first-out: the busiest takes most). The supervisor holds them all, so
/// a worker that dies loses nothing queued: its replacement accepts from the same socket.
///
/// SIGHUP reloads: the file is read and checked here (a bad one changes nothing), a new
/// generation of workers starts on the same sockets, and once each of its workers is ready the
/// old generation is told to drain (SIGHUP to a worker: stop accepting, finish what is in flight,
/// exit).
final class Supervisor {
    let workers: Int
    let arguments: [String]
    /// The config file, read again at each reload; nil in the one-line mode (nothing to reload).
    let configPath: String?
    let logger: Logger
    let log: LogTarget
    private let signals: Int32
    private var listeners: ListenerTable
    private let shareFD: Int32
    private let shared: SharedSlots
    /// Metrics slots for workers: four generations at once (one serving, up to three draining).
    private let metricsSlots: Int
    private var slotBusy: [Bool]
    private var current: Generation
    private var pending: Generation?
    private var pendingDeadline: UInt64 = 0
    private var draining: [Generation] = []
    private var stopping = false
    private var restarts = 0
    private var reloads = (ok: 0, failed: 0)
    private var loadedAt = wallClockSeconds()
    /// The access log's file and the socket every worker sends its lines to, for the whole life
    /// of the supervisor (a reload that changes `access_log` says it waits for a restart).
    private let sink: AccessLogSink?

    /// A worker's exit status when the sockets it was handed are not its config's (EX_CONFIG).
    static let configChanged: Int32 = 78

    /// Binds every listener of `configuration` and prints where; `run()` then starts the workers.
    init(configuration: Configuration, text: String?, workers: Int, arguments: [String], configPath: String?, logger: Logger, log: LogTarget) throws {
        self.workers = workers
        self.arguments = arguments
        self.configPath = configPath
        self.logger = logger
        self.log = log
        signals = gh_supervisor_signalfd()
        guard signals >= 0 else { throw Failure("cannot block signals for the supervisor") }
        raiseOpenFileLimit()
        listeners = ListenerTable(workers: workers)
        let plan = try listeners.plan(configuration)
        listeners.commit(plan)
        for (kind, address) in plan.bound { writeLine(1, "gatehouse: \(kind) listening on \(address)") }
        metricsSlots = 4 * workers
        slotBusy = Array(repeating: false, count: metricsSlots)
        // Every worker publishes its metrics in its slot of this shared memory; the one serving
        // /metrics sums them. The supervisor's own figures go in the slot after the workers'.
        guard let (fd, slots) = SharedSlots.create(slots: metricsSlots + 1) else { throw Failure("cannot create the shared metrics memory") }
        shareFD = fd
        shared = slots
        sink = try configuration.accessLog.map { s throws(Failure) in try AccessLogSink(settings: s) }
        current = Generation(number: 1, configuration: configuration, configFD: text.flatMap(Generation.configFD), plan: plan)
    }

    /// Runs the workers until SIGTERM/SIGINT (drain) or SIGQUIT (immediate), then returns.
    func run() throws {
        publishOwn()
        start(current)
        while true {
            waitForEvent()
            if stopping {
                if all.allSatisfy({ $0.running.isEmpty }) {
                    sink?.drain()  // the last lines the workers sent as they drained
                    return
                }
                continue
            }
            checkPending()
            let now = monotonicNanos()
            for w in current.workers where w.pid == 0 && w.restartAt <= now { spawn(w, of: current) }
        }
    }

    private var all: [Generation] { [current] + (pending.map { [$0] } ?? []) + draining }

    // MARK: Events

    /// Blocks until a signal, a ready pipe, a restart or the pending generation's deadline.
    private func waitForEvent() {
        let now = monotonicNanos()
        var due = current.workers.filter { $0.pid == 0 && !stopping }.map(\.restartAt)
        if pending != nil { due.append(pendingDeadline) }
        let timeout = due.min().map { Int32(clamping: ($0 > now ? $0 - now : 0) / 1_000_000 + 1) } ?? -1
        let waiting = all.flatMap(\.workers).filter { $0.readyFD >= 0 }
        var fds = [pollfd(fd: signals, events: Int16(POLLIN), revents: 0), pollfd(fd: sink?.fd ?? -1, events: Int16(POLLIN), revents: 0)]
            + waiting.map { pollfd(fd: $0.readyFD, events: Int16(POLLIN), revents: 0) }
        guard poll(&fds, nfds_t(fds.count), timeout) > 0 else { return }
        if fds[1].revents != 0 { sink?.drain() }
        for (w, p) in zip(waiting, fds.dropFirst(2)) where p.revents != 0 { _ = w.takeReady() }
        guard fds[0].revents & Int16(POLLIN) != 0 else { return }
        var info = signalfd_siginfo()
        let n = withUnsafeMutableBytes(of: &info) { read(signals, $0.baseAddress, $0.count) }
        if n == MemoryLayout<signalfd_siginfo>.size { take(Int32(info.ssi_signo)) }
    }

    private func take(_ signal: Int32) {
        switch signal {
        case SIGCHLD: reap()
        case SIGTERM, SIGINT:
            if !stopping { logger.notice("signal \(signal): draining \(all.flatMap(\.running).count) workers") }
            stop(with: SIGTERM)
        case SIGQUIT:
            logger.notice("signal \(signal): stopping \(all.flatMap(\.running).count) workers now")
            stop(with: SIGKILL)
        case SIGUSR1:
            Gatehouse.reopen(log, logger)
            sink?.reopen(logger)
            for w in all.flatMap(\.running) { kill(w.pid, SIGUSR1) }
        case SIGHUP: if !stopping { reload() }
        default: break
        }
    }

    private func stop(with signal: Int32) {
        stopping = true
        for w in all.flatMap(\.running) { kill(w.pid, signal) }
        listeners.closeAll()
    }

    /// Collects every worker that ended: a draining generation's are done, a pending one's mean
    /// the reload failed, the serving one's are started again.
    private func reap() {
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            guard pid > 0 else { return }
            guard let g = all.first(where: { $0.workers.contains { $0.pid == pid } }),
                  let w = g.workers.first(where: { $0.pid == pid }) else { continue }
            w.pid = 0
            if w.readyFD >= 0 {
                close(w.readyFD)
                w.readyFD = -1
            }
            shared.markDead(slot: w.metricsSlot)
            let why = Self.describe(status)
            if stopping || g.draining {
                logger.info("worker \(w.index) of generation \(g.number) (pid \(pid)) \(why)")
                if g.running.isEmpty { retire(g) }
            } else if g === pending {
                logger.error("reload: worker \(w.index) of generation \(g.number) (pid \(pid)) \(why) before it was ready; generation \(current.number) serves on")
                abandonPending()
            } else {
                restarts += 1
                publishOwn()
                w.planRestart()
                logger.error("worker \(w.index) (pid \(pid)) \(why); starting another")
            }
        }
    }

    /// A drained generation is gone: its metric slots are free (what they counted stays there
    /// until a new worker takes the slot over and adds it to its own), its config file closed.
    private func retire(_ g: Generation) {
        for w in g.workers { slotBusy[w.metricsSlot] = false }
        g.release()
        draining.removeAll { $0 === g }
    }

    // MARK: Reload

    /// SIGHUP: reads and checks the file, binds what it adds, starts its generation.
    private func reload() {
        guard let path = configPath else {
            logger.warning("SIGHUP: started without a config file (one-line mode): nothing to reload")
            return
        }
        guard pending == nil else {
            logger.warning("SIGHUP: reload of generation \(pending!.number) still starting; this one ignored")
            return
        }
        let next = current.number + 1
        let configuration: Configuration
        let text: String
        do {
            (configuration, text) = try Self.load(path)
        } catch {
            return failReload("\(error)")
        }
        // The supervisor writes the access log as it was opened; workers formatting another way
        // (or not at all) would garble it.
        if configuration.accessLog != current.configuration.accessLog {
            return failReload("access_log changes at a restart only (it is written by the supervisor); restart gatehouse to change it")
        }
        guard slotBusy.filter({ !$0 }).count >= workers else {
            return failReload("\(draining.count) older generations are still draining; try again when they are done")
        }
        let plan: ListenerTable.Plan
        do { plan = try listeners.plan(configuration) } catch { return failReload("\(error)") }
        guard let fd = Generation.configFD(text: text) else {
            listeners.abandon(plan)
            return failReload("cannot hand the config to workers: \(IOError.errno(errno))")
        }
        if configuration.workers != 0 && configuration.workers != workers || configuration.workers == 0 && usableCPUs() != workers {
            logger.warning("reload: the number of workers changes at a restart only; keeping \(workers)")
        }
        if configuration.errorLog != current.configuration.errorLog || configuration.logLevel != current.configuration.logLevel {
            logger.warning("reload: the new error_log and log_level apply to the new workers; the supervisor's own lines keep to \(current.configuration.errorLog) until a restart")
        }
        logger.notice("SIGHUP: \(path) is valid; starting generation \(next)")
        let g = Generation(number: next, configuration: configuration, configFD: fd, plan: plan)
        pending = g
        pendingDeadline = monotonicNanos() + 10_000_000_000
        start(g)
    }

    /// The file read and checked as `gatehouse --check` does (OpenSSL loads every certificate, the
    /// error log opens), so a reload that would leave new workers unable to start is refused here.
    static func load(_ path: String) throws -> (Configuration, String) {
        guard let text = Gatehouse.readFile(path) else { throw Failure("cannot read configuration file \(path)") }
        let c = try ConfigLoader.load(text: text, file: path)
        try verify(c)
        return (c, text)
    }

    /// What only opening proves, checked before anything starts (a start, `--check`, a reload):
    /// OpenSSL loads every certificate and its TLS policy, and the error log opens.
    static func verify(_ c: Configuration) throws {
        for s in c.servers {
            guard let t = s.tls else { continue }
            _ = try TLSServerContext(settings: t, stats: TLSStats())
        }
        if c.errorLog != "stderr" {
            switch ErrorLogHandler.open(path: c.errorLog) {
            case .success(let fd): Glibc.close(fd)
            case .failure(let e): throw Failure("error_log \(c.errorLog): \(e)")
            }
        }
    }

    private func failReload(_ why: String) {
        reloads.failed += 1
        publishOwn()
        logger.error("reload refused: \(why); generation \(current.number) serves on, nothing changed")
    }

    /// The pending generation is ready when all its workers are: the old one is told to drain.
    /// Not ready in 10 s: the reload failed.
    private func checkPending() {
        guard let g = pending else { return }
        if g.allReady {
            pending = nil
            let old = current
            current = g
            drain(old)
            listeners.commit(g.plan)
            reloads.ok += 1
            loadedAt = wallClockSeconds()
            publishOwn()
            logger.notice("reload: generation \(g.number) serves; generation \(old.number) drains")
        } else if monotonicNanos() >= pendingDeadline {
            logger.error("reload: generation \(g.number) was not ready within 10 s; generation \(current.number) serves on")
            abandonPending()
        }
    }

    /// Stops the pending generation's workers (they drain what they may have accepted) and
    /// closes what was bound for it.
    private func abandonPending() {
        guard let g = pending else { return }
        pending = nil
        drain(g)
        listeners.abandon(g.plan)
        reloads.failed += 1
        publishOwn()
    }

    /// Tells a generation's workers to drain (SIGHUP to a worker); they are not started again.
    private func drain(_ g: Generation) {
        g.draining = true
        draining.append(g)
        for w in g.running { kill(w.pid, SIGHUP) }
        if g.running.isEmpty { retire(g) }
    }

    // MARK: Workers

    private func start(_ g: Generation) {
        for i in 0..<workers {
            guard let slot = slotBusy.firstIndex(of: false) else { break }
            slotBusy[slot] = true
            let w = Worker(index: i, metricsSlot: slot)
            g.workers.append(w)
            spawn(w, of: g)
        }
    }

    private func publishOwn() {
        let v = [Double(restarts), Double(workers), loadedAt, Double(current.number), Double(reloads.ok), Double(reloads.failed)]
        v.withUnsafeBufferPointer { shared.publish(slot: metricsSlots, values: $0.baseAddress!, count: v.count, layout: SharedSlots.supervisorLayout) }
    }

    private func spawn(_ w: Worker, of g: Generation) {
        var ready: [Int32] = [-1, -1]
        guard gh_pipe_nonblocking(&ready) == 0 else {
            logger.error("worker \(w.index): cannot start: \(IOError.errno(errno))")
            w.planRestart(failedToStart: true)
            return
        }
        let listen = g.plan.perSlot[w.index]
        let metrics = w.index == 0 ? g.plan.metricsFD : nil
        let fds = [shareFD, ready[1]] + (g.configFD.map { [$0] } ?? []) + listen + (metrics.map { [$0] } ?? []) + (sink.map { [$0.workerFD] } ?? [])
        // Numbered above every descriptor here, so no dup2 of the spawn overwrites one another
        // is still to be copied from.
        let first = (fds + listeners.allFDs + all.flatMap(\.workers).map(\.readyFD) + [ready[0], signals] + (sink.map { [$0.fd] } ?? [])).max()! + 1
        let targets = fds.indices.map { first + Int32($0) }
        var at = 2
        var env = ProcessEnvironment.current.filter { !$0.hasPrefix("GATEHOUSE_WORKER_") }
        env.append("GATEHOUSE_WORKER_SHARE=\(targets[0]),\(w.metricsSlot),\(metricsSlots)")
        env.append("GATEHOUSE_WORKER_READY_FD=\(targets[1])")
        if g.configFD != nil {
            env.append("GATEHOUSE_WORKER_CONFIG_FD=\(targets[at])")
            at += 1
        }
        env.append("GATEHOUSE_WORKER_LISTEN_FDS=\(targets[at..<(at + listen.count)].map(String.init).joined(separator: ","))")
        if metrics != nil { env.append("GATEHOUSE_WORKER_METRICS_FD=\(targets[at + listen.count])") }
        if sink != nil { env.append("GATEHOUSE_WORKER_ACCESS_LOG_FD=\(targets.last!)") }
        env.append("GATEHOUSE_WORKER_SUPERVISOR=\(getpid())")
        let argv = arguments + ["--worker-slot", String(w.index)]
        let pid = withCStrings(argv) { a in withCStrings(env) { e in gh_spawn("/proc/self/exe", a, e, fds, targets, Int32(fds.count)) } }
        close(ready[1])
        guard pid > 0 else {
            close(ready[0])
            logger.error("worker \(w.index): cannot start: \(String(cString: strerror(-pid)))")
            w.planRestart(failedToStart: true)
            return
        }
        w.markStarted(pid: pid, readyFD: ready[0])
    }

    static func describe(_ status: Int32) -> String {
        let sig = status & 0x7F
        if sig == 0 { return "exited with status \((status >> 8) & 0xFF)" }
        return "was killed by signal \(sig) (\(String(cString: strsignal(sig))))"
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }
}
