import CLinux
import Config
import Glibc
import Logging
import Proxy
import Runtime

/// `workers N` (N > 1, or any N with `access_log` on): this process binds every listener once and keeps them for its whole life,
/// and runs N workers, each the one-thread proxy of `workers 1`, on them. Workers are this same
/// executable started with posix_spawn (never fork from a Swift process) and the listening
/// sockets as inherited descriptors. One thread here too: a blocking loop on a signalfd.
///
/// Each worker slot has its own listening socket per address, bound with SO_REUSEPORT, so the
/// kernel spreads new connections evenly over the slots (one listener shared by every worker's
/// epoll wakes them last-in-first-out: the busiest takes most). The supervisor holds them all, so
/// a worker that dies loses nothing queued: its replacement accepts from the same socket.
struct Supervisor {
    let configuration: Configuration
    let workers: Int
    let arguments: [String]
    let logger: Logger
    let log: LogTarget


    /// A worker's exit status when the sockets it was handed are not its config's (EX_CONFIG):
    /// starting it again cannot help.
    static let configChanged: Int32 = 78

    private final class Slot {
        let index: Int
        /// Its worker cannot run with this supervisor's sockets: not started again.
        var retired = false
        var pid: Int32 = 0
        var startedAt: UInt64 = 0
        var backoff: UInt64 = 100_000_000
        var restartAt: UInt64 = 0
        init(index: Int) { self.index = index }
    }

    /// Binds, prints the bound addresses, runs the workers until SIGTERM/SIGINT (drain) or SIGQUIT
    /// (immediate), then returns.
    func run() throws {
        let sfd = gh_supervisor_signalfd()
        guard sfd >= 0 else { throw Failure("cannot block signals for the supervisor") }
        raiseOpenFileLimit()
        let sink = try configuration.accessLog.map { s throws(Failure) in try AccessLogSink(settings: s) }  // access log
        var (perSlot, metricsFD, bound) = try bindAll()
        for (kind, address) in bound { writeLine(1, "gatehouse: \(kind) listening on \(address)") }
        // Every worker publishes its metrics in its slot of this shared memory; the one serving
        // /metrics sums them. Ours to mark a slot dead when its worker exits.
        guard let (shareFD, shared) = SharedSlots.create(slots: workers + 1) else { throw Failure("cannot create the shared metrics memory") }
        var restarts = 0
        let loadedAt = wallClockSeconds()
        func publishOwn() {
            let v = [Double(restarts), Double(workers), loadedAt]
            v.withUnsafeBufferPointer { shared.publish(slot: workers, values: $0.baseAddress!, count: v.count, layout: SharedSlots.supervisorLayout) }
        }
        publishOwn()
        // A worker's descriptors are numbered above every one handed over, so no dup2 of the
        // spawn overwrites a descriptor another is still to be copied from.
        let handed: [Int32] = perSlot.flatMap { $0 } + [shareFD, sink?.workerFD ?? -1]  // -1: no access log
        let firstTarget = (handed + (metricsFD.map { [$0] } ?? [])).max()! + 1
        let slots = (0..<workers).map { Slot(index: $0) }
        func start(_ s: Slot) {
            spawn(s, perSlot[s.index], metrics: s.index == 0 ? metricsFD : nil, share: shareFD, accessLog: sink?.workerFD, firstTarget: firstTarget)
        }
        for s in slots { start(s) }
        var stopping = false
        while true {
            let now = monotonicNanos()
            let due = slots.filter { $0.pid == 0 && !$0.retired && !stopping }.map(\.restartAt).min()
            let timeout = due.map { Int32(clamping: ($0 > now ? $0 - now : 0) / 1_000_000 + 1) } ?? -1
            // The access log's datagrams are read beside the signals (AccessLogSink; fd -1 when off).
            var p = [pollfd(fd: sfd, events: Int16(POLLIN), revents: 0), pollfd(fd: sink?.fd ?? -1, events: Int16(POLLIN), revents: 0)]
            _ = poll(&p, 2, timeout)
            if p[1].revents != 0 { sink?.drain() }
            if p[0].revents & Int16(POLLIN) != 0 {
                var info = signalfd_siginfo()
                let n = withUnsafeMutableBytes(of: &info) { read(sfd, $0.baseAddress, $0.count) }
                if n == MemoryLayout<signalfd_siginfo>.size {
                    switch Int32(info.ssi_signo) {
                    case SIGCHLD:
                        let ended = reap(slots, stopping: stopping)
                        for dead in ended { shared.markDead(slot: dead) }
                        if !stopping && !ended.isEmpty {
                            restarts += ended.count
                            publishOwn()
                        }
                        for s in slots where s.retired && !perSlot[s.index].isEmpty {
                            // Its sockets closed, the kernel gives their share of new connections
                            // to the other workers' sockets instead of queueing it for no one.
                            for fd in perSlot[s.index] { close(fd) }
                            perSlot[s.index] = []
                            // Worker 0 served /metrics: with it gone, scrapes are refused, not left hanging.
                            if s.index == 0, let m = metricsFD {
                                close(m)
                                metricsFD = nil
                            }
                        }
                        if slots.allSatisfy(\.retired) {
                            logger.critical("no worker can start with the sockets bound at start; stopping")
                            closeListeners(&perSlot, &metricsFD)
                            throw Failure("no worker could start: the config changed since gatehouse started")
                        }
                    case SIGTERM, SIGINT:
                        if !stopping { logger.notice("signal \(info.ssi_signo): draining \(workers) workers") }
                        stopping = true
                        for s in slots where s.pid > 0 { kill(s.pid, SIGTERM) }
                        closeListeners(&perSlot, &metricsFD)
                    case SIGQUIT:
                        logger.notice("signal \(info.ssi_signo): stopping \(workers) workers now")
                        stopping = true
                        for s in slots where s.pid > 0 { kill(s.pid, SIGKILL) }
                        closeListeners(&perSlot, &metricsFD)
                    case SIGUSR1:
                        Gatehouse.reopen(log, logger)
                        sink?.reopen(logger)  // access log
                        for s in slots where s.pid > 0 { kill(s.pid, SIGUSR1) }
                    case SIGHUP:
                        logger.warning("SIGHUP: reloading is not supported yet; nothing changed")
                    default: break
                    }
                }
            }
            if stopping {
                if slots.allSatisfy({ $0.pid == 0 }) {
                    sink?.drain()  // access log: the last lines the workers sent as they drained
                    return
                }
                continue
            }
            let t = monotonicNanos()
            for s in slots where s.pid == 0 && !s.retired && s.restartAt <= t { start(s) }
        }
    }

    /// Stopping: the workers close theirs as they drain; with ours closed too, new connections
    /// are refused at once instead of queueing where no one will accept them.
    private func closeListeners(_ perSlot: inout [[Int32]], _ metrics: inout Int32?) {
        for fd in perSlot.flatMap({ $0 }) + (metrics.map { [$0] } ?? []) { close(fd) }
        perSlot = perSlot.map { _ in [] }
        metrics = nil
    }

    /// Every listen address bound once per slot (SO_REUSEPORT; a port 0 becomes the port the first
    /// got), and the metrics listener once.
    private func bindAll() throws -> (perSlot: [[Int32]], metrics: Int32?, bound: [(String, SocketAddress)]) {
        var perSlot = Array(repeating: [Int32](), count: workers)
        var bound: [(String, SocketAddress)] = []
        for s in configuration.servers {
            for l in s.listen {
                guard var addr = SocketAddress.resolve(host: l.address.host, port: l.address.port) else {
                    throw Failure("listen \(l.address): cannot resolve")
                }
                // The slots share the port by SO_REUSEPORT; that must not let this instance join
                // another's port unless `listen ... reuseport` says so: a plain bind tries first.
                if !l.reusePort {
                    do { close(try TCP.bindListener(on: addr, backlog: 1)) } catch {
                        throw Failure("cannot listen on \(l.address): \(ProxyServer.describe(error, reusePort: false))")
                    }
                }
                for slot in 0..<workers {
                    let fd: Int32
                    do { fd = try TCP.bindListener(on: addr, reusePort: true) } catch {
                        throw Failure("cannot listen on \(l.address): \(ProxyServer.describe(error, reusePort: true))")
                    }
                    if slot == 0, let actual = TCP.localAddress(ofFD: fd) { addr = actual }
                    perSlot[slot].append(fd)
                }
                bound.append((s.tls == nil ? "proxy" : "proxy (tls)", addr))
            }
        }
        var metricsFD: Int32?
        if let m = configuration.metrics {
            guard let addr = SocketAddress.resolve(host: m.host, port: m.port) else { throw Failure("metrics \(m): cannot resolve") }
            do { metricsFD = try TCP.bindListener(on: addr, backlog: 128) } catch {
                throw Failure("cannot listen on \(m) (metrics): \(ProxyServer.describe(error, reusePort: nil))")
            }
            bound.append(("metrics", TCP.localAddress(ofFD: metricsFD!) ?? addr))
        }
        return (perSlot, metricsFD, bound)
    }

    private func spawn(_ slot: Slot, _ listeners: [Int32], metrics: Int32?, share: Int32, accessLog: Int32?, firstTarget: Int32) {
        let fds = [share] + listeners + (metrics.map { [$0] } ?? []) + (accessLog.map { [$0] } ?? [])
        let targets = fds.indices.map { firstTarget + Int32($0) }
        let listenTargets = targets.dropFirst().prefix(listeners.count).map(String.init).joined(separator: ",")
        var env = ProcessEnvironment.current.filter { !$0.hasPrefix("GATEHOUSE_WORKER_") }
        env.append("GATEHOUSE_WORKER_LISTEN_FDS=\(listenTargets)")
        env.append("GATEHOUSE_WORKER_SHARE=\(targets[0]),\(slot.index),\(workers)")
        if metrics != nil { env.append("GATEHOUSE_WORKER_METRICS_FD=\(targets[1 + listeners.count])") }
        if accessLog != nil { env.append("GATEHOUSE_WORKER_ACCESS_LOG_FD=\(targets.last!)") }
        env.append("GATEHOUSE_WORKER_SUPERVISOR=\(getpid())")
        let argv = arguments + ["--worker-slot", String(slot.index)]
        let pid = withCStrings(argv) { a in withCStrings(env) { e in gh_spawn("/proc/self/exe", a, e, fds, targets, Int32(fds.count)) } }
        guard pid > 0 else {
            logger.error("worker \(slot.index): cannot start: \(String(cString: strerror(-pid)))")
            slot.restartAt = monotonicNanos() + slot.backoff
            slot.backoff = min(slot.backoff * 2, 5_000_000_000)
            return
        }
        slot.pid = pid
        slot.startedAt = monotonicNanos()
    }

    /// Collects every worker that ended and plans its replacement: at once after a worker that ran
    /// 10 s or more, else after a delay that doubles up to 5 s (a worker that keeps crashing).
    /// Returns the slots whose worker ended.
    @discardableResult
    private func reap(_ slots: [Slot], stopping: Bool) -> [Int] {
        var ended: [Int] = []
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            guard pid > 0 else { return ended }
            guard let s = slots.first(where: { $0.pid == pid }) else { continue }
            s.pid = 0
            ended.append(s.index)
            let why = Self.describe(status)
            if stopping {
                logger.info("worker \(s.index) (pid \(pid)) \(why)")
                continue
            }
            if status & 0x7F == 0 && (status >> 8) & 0xFF == Self.configChanged {
                s.retired = true
                logger.critical("worker \(s.index) (pid \(pid)) cannot serve the sockets bound at start (see its line above); its share of the listeners is closed, \(slots.filter { !$0.retired }.count) workers serve on")
                continue
            }
            let ran = monotonicNanos() - s.startedAt
            if ran >= 10_000_000_000 { s.backoff = 100_000_000 }
            s.restartAt = monotonicNanos() + (ran >= 10_000_000_000 ? 0 : s.backoff)
            if ran < 10_000_000_000 { s.backoff = min(s.backoff * 2, 5_000_000_000) }
            logger.error("worker \(s.index) (pid \(pid)) \(why); starting another")
        }
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

/// What a worker was handed: read from the environment the supervisor set.
enum WorkerHandover {
    /// Each handed-over socket must be bound where the worker's reading of the config says (the
    /// file is read again by every worker that starts, and may have changed since the supervisor
    /// bound the sockets); nil when it is, else what differs.
    static func mismatch(_ c: Configuration, _ h: ProxyServer.Inherited) -> String? {
        let listens = c.servers.flatMap(\.listen)
        guard listens.count == h.listeners.count else {
            return "the config has \(listens.count) listen addresses, the supervisor bound \(h.listeners.count)"
        }
        for (l, fd) in zip(listens, h.listeners) {
            guard let bound = TCP.localAddress(ofFD: fd), let want = SocketAddress.resolve(host: l.address.host, port: bound.port),
                  l.address.port == 0 || l.address.port == bound.port, want.description == bound.description else {
                return "listen \(l.address) is not where the supervisor bound it (\(TCP.localAddress(ofFD: fd)?.description ?? "?"))"
            }
        }
        return nil
    }

    static func inherited() -> ProxyServer.Inherited? {
        let env = ProcessEnvironment.current
        func value(_ key: String) -> String? {
            env.first { $0.hasPrefix(key + "=") }.map { String($0.dropFirst(key.count + 1)) }
        }
        guard let list = value("GATEHOUSE_WORKER_LISTEN_FDS") else { return nil }
        let fds = list.split(separator: ",").compactMap { Int32($0) }
        let share = value("GATEHOUSE_WORKER_SHARE").map { $0.split(separator: ",").compactMap { Int($0) } }
        return ProxyServer.Inherited(listeners: fds, metrics: value("GATEHOUSE_WORKER_METRICS_FD").flatMap { Int32($0) },
                                     share: share.flatMap { $0.count == 3 ? (Int32($0[0]), $0[1], $0[2]) : nil },
                                     accessLog: value("GATEHOUSE_WORKER_ACCESS_LOG_FD").flatMap { Int32($0) })
    }

    /// Ties this worker's life to its supervisor's: false when the supervisor is already gone.
    static func followSupervisor() -> Bool {
        guard let text = ProcessEnvironment.current.first(where: { $0.hasPrefix("GATEHOUSE_WORKER_SUPERVISOR=") }),
              let pid = Int32(text.dropFirst("GATEHOUSE_WORKER_SUPERVISOR=".count)) else { return false }
        return gh_die_with_parent(pid) == 0
    }
}

enum ProcessEnvironment {
    static var current: [String] {
        var out: [String] = []
        var p = environ
        while let e = p.pointee {
            out.append(String(cString: e))
            p += 1
        }
        return out
    }
}

/// `body` with `strings` as a NULL-terminated C array.
func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    var ptrs: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    ptrs.append(nil)
    defer { for p in ptrs { free(p) } }
    return ptrs.withUnsafeBufferPointer { body($0.baseAddress!) }
}

/// CPUs this process may run on (its affinity mask), for `workers auto`.
func usableCPUs() -> Int { Int(gh_usable_cpus()) }
