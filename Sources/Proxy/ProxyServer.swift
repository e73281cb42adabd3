import Config
import Glibc
import Logging
import Runtime
import TLS

/// Why the proxy could not start.
public struct StartError: Error, CustomStringConvertible {
    public let description: String
}

/// The whole proxy: listeners, backend groups, metrics endpoint, signals and graceful drain.
/// Everything runs on `EventLoop.shared`; `run()` returns when the loop stops.
public final class ProxyServer: @unchecked Sendable {
    let ctx: ProxyContext
    let groups: [UpstreamGroup]
    var listeners: [Listener] = []
    var metricsEndpoint: MetricsEndpoint?
    /// Kept even without a metrics listener: it owns the histograms sessions record into.
    let metrics: ProxyMetrics
    var signals: SignalWatcher?
    let logger: Logger
    var drainStarted = false
    /// One per TLS server block, in config order.
    var tlsContexts: [TLSServerContext] = []
    /// Bound addresses, in config order: proxy listeners then the metrics listener.
    public private(set) var boundAddresses: [(kind: String, address: SocketAddress)] = []

    /// A worker's config is not the one its supervisor and the other workers run (the file changed).
    public struct ConfigChanged: Error, CustomStringConvertible {
        public let description: String
    }

    /// Listening sockets a supervisor bound and handed over (a worker's): one per `listen`, in
    /// config order, and the metrics listener for the worker that serves it.
    public struct Inherited: Sendable {
        public var listeners: [Int32]
        public var metrics: Int32?
        /// The shared metrics memory (`SharedSlots`): its fd, this worker's slot, how many slots.
        public var share: (fd: Int32, slot: Int, slots: Int)?
        /// The sending end of the supervisor's access-log socket (see `AccessLog`).
        public var accessLog: Int32?
        public init(listeners: [Int32], metrics: Int32?, share: (fd: Int32, slot: Int, slots: Int)?, accessLog: Int32? = nil) {
            self.listeners = listeners
            self.metrics = metrics
            self.share = share
            self.accessLog = accessLog
        }
    }

    /// Called on SIGUSR1 (logrotate): reopens the log files.
    public var reopenLogs: () -> Void = {}
    /// Called once everything is set up, just before the loop runs (a worker tells its supervisor).
    public var onRunning: () -> Void = {}
    /// A supervisor's worker: SIGHUP means its generation was replaced by a reload.
    let isWorker: Bool

    public init(config: Configuration, logger: Logger, inherited: Inherited? = nil) throws {
        self.logger = logger
        isWorker = inherited != nil
        raiseOpenFileLimit()
        ctx = ProxyContext(config: config)
        var groups: [UpstreamGroup] = []
        for g in config.backends {
            var addrs: [SocketAddress] = []
            for s in g.servers {
                guard let a = SocketAddress.resolve(host: s.host, port: s.port) else {
                    throw StartError(description: "backend \(g.name): cannot resolve \(s)")
                }
                addrs.append(a)
            }
            let tlsClient = try g.tls.map { t throws(ConfigError) in try TLSClientContext(settings: t, group: g.name) }
            let group = UpstreamGroup(config: g, addresses: addrs, connectTimeout: config.timeouts.upstreamConnect, tlsClient: tlsClient)
            group.errorLog = ctx.errorLog
            groups.append(group)
        }
        self.groups = groups
        if let first = groups.first {
            ctx.preallocateSessions(min(config.limits.maxConnections, 20_000), group: first)
        }
        if let settings = config.accessLog {
            if let fd = inherited?.accessLog {
                ctx.accessLog = AccessLog(fd: fd, settings: settings)
            } else {
                logger.error("access_log \(settings.path): this worker was handed no access-log socket (access_log was turned on after gatehouse started?); its requests are not logged until gatehouse restarts")
            }
        }
        let metrics = ProxyMetrics(ctx: ctx, groups: groups)
        self.metrics = metrics
        for s in config.servers {
            let gi = config.backends.firstIndex { $0.name == s.backend }!
            let tls = try s.tls.map { settings throws(ConfigError) in
                let t = try TLSServerContext(settings: settings, stats: ctx.tlsStats)
                tlsContexts.append(t)
                return t
            }
            for l in s.listen {
                guard let addr = SocketAddress.resolve(host: l.address.host, port: l.address.port) else {
                    throw StartError(description: "listen \(l.address): cannot resolve")
                }
                let sock: Socket
                if let inherited {
                    guard listeners.count < inherited.listeners.count, let s = Socket(fd: inherited.listeners[listeners.count]) else {
                        throw StartError(description: "listen \(l.address): no listening socket handed over")
                    }
                    sock = s
                } else {
                    do { sock = try TCP.listen(on: addr, reusePort: l.reusePort) } catch {
                        throw StartError(description: "cannot listen on \(l.address): \(Self.describe(error, reusePort: l.reusePort))")
                    }
                }
                listeners.append(Listener(socket: sock, ctx: ctx, group: groups[gi], groupIndex: gi, tls: tls, priorKnowledge: s.http2 && tls == nil))
                boundAddresses.append((tls == nil ? "proxy" : "proxy (tls)", TCP.localAddress(of: sock) ?? addr))
            }
        }
        metrics.tls.contexts = tlsContexts
        if let s = inherited?.share, let slots = SharedSlots(fd: s.fd, slots: s.slots + 1) {
            metrics.share(slots, slot: s.slot, workerSlots: s.slots)
        }
        // The subject header is the proxy's word on every listener, not only where it is set:
        // a plain listener in front of the same backend must not let a client write it.
        ctx.subjectHeaderLowercased = tlsContexts.first { $0.forwardsClientSubject }?.clientSubjectHeaderLowercased
        if let inherited {
            if let fd = inherited.metrics, let sock = Socket(fd: fd) {
                metricsEndpoint = MetricsEndpoint(socket: sock, metrics: metrics, ctx: ctx)
            }
        } else if let m = config.metrics {
            guard let addr = SocketAddress.resolve(host: m.host, port: m.port) else {
                throw StartError(description: "metrics \(m): cannot resolve")
            }
            let sock: Socket
            // Never SO_REUSEPORT: a second instance must not take half the scrapes.
            do { sock = try TCP.listen(on: addr, backlog: 128) } catch {
                throw StartError(description: "cannot listen on \(m) (metrics): \(Self.describe(error, reusePort: nil))")
            }
            metricsEndpoint = MetricsEndpoint(socket: sock, metrics: metrics, ctx: ctx)
            boundAddresses.append(("metrics", TCP.localAddress(of: sock) ?? addr))
        }
    }

    /// The reason a bind failed; for EADDRINUSE, what holds the address and what would share it
    /// (`reusePort` nil for the metrics listener, which never shares).
    public static func describe(_ e: IOError, reusePort: Bool?) -> String {
        switch e {
        case .errno(let n) where n == EADDRINUSE:
            let reason = "address already in use (EADDRINUSE): another process, perhaps another gatehouse, is listening on it"
            guard let reusePort else { return reason }
            return reason + (reusePort ? " without reuseport" : "; to share a port on purpose, write `listen ADDR reuseport;` in every process")
        default: return e.description
        }
    }

    /// Starts every task and runs the loop on the calling thread until drained.
    public func run() {
        signals = SignalWatcher { [unowned self] sig in
            if sig == SIGHUP {
                guard self.isWorker else {
                    self.logger.warning("SIGHUP: reloading needs the supervisor (`workers 2` or more, or auto); nothing changed")
                    return
                }
                self.logger.info("reload: a new generation serves; draining")
                spawnOnLoop { await self.drain(replaced: true) }
                return
            }
            if sig == SIGUSR1 {
                self.reopenLogs()
                return
            }
            if sig == SIGQUIT {
                // `gatehouse quit`: stop now, dropping connections (SIGTERM drains).
                self.logger.info("SIGQUIT: stopping at once")
                EventLoop.shared.stop()
                return
            }
            self.logger.info("signal \(sig): draining")
            spawnOnLoop { await self.drain() }
        }
        for l in listeners {
            spawnOnLoop { await l.run() }
        }
        if let m = metricsEndpoint {
            spawnOnLoop { await m.run() }
        }
        spawnOnLoop { [ctx, metrics] in
            while true {
                await sleep(until: EventLoop.shared.now + 1_000_000_000)
                ctx.housekeeping()
                metrics.publish()
            }
        }
        // Keys made at start are rotated; an operator's ticket_key_file is not.
        let rotating = tlsContexts.filter { $0.settings.sessionTickets && $0.settings.ticketKeyFile == nil }
        if let rotation = rotating.map({ $0.settings.ticketKeyRotation }).min() {
            spawnOnLoop {
                while true {
                    await sleep(until: EventLoop.shared.now + rotation)
                    TLSServerContext.rotateTicketKeys()
                }
            }
        }
        metrics.takeBaseline()
        onRunning()
        EventLoop.shared.run()
        ctx.accessLog?.finish()  // the lines of the last requests, before the process ends
        metrics.publish()  // a worker's last counts, for the workers after it
    }

    /// Graceful stop: stop accepting, let in-flight requests finish (up to the drain timeout),
    /// close idle connections, then stop the loop. `replaced`: a reload started a new generation,
    /// which serves /metrics and /health from now on (this one must not answer "draining").
    @LoopActor
    func drain(replaced: Bool = false) async {
        guard !drainStarted else { return }
        drainStarted = true
        ctx.draining = true
        for l in listeners { l.stop() }
        if replaced { metricsEndpoint?.handOver() }
        for g in groups {
            g.draining = true
            g.closeIdle()
        }
        let deadline = EventLoop.shared.now + ctx.config.timeouts.drain
        while EventLoop.shared.now < deadline {
            ctx.closeIdleSessions(quietFor: 250_000_000)
            if ctx.stats.requestsInFlight == 0 && ctx.stats.clientConnections == 0 && (metricsEndpoint?.answering ?? 0) == 0 { break }
            await sleep(until: EventLoop.shared.now + 20_000_000)
        }
        logger.info("drained: \(ctx.stats.requestsInFlight) requests left in flight")
        metricsEndpoint?.socket.close()
        EventLoop.shared.stop()
    }
}
