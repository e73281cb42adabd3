import Runtime
import Telemetry
import TLS

/// Every metric Gatehouse exports, created once; `refresh()` brings them up to date from the
/// loop's plain counters just before each scrape.
final class ProxyMetrics: @unchecked Sendable {
    let registry = MetricsRegistry()
    unowned let ctx: ProxyContext
    let groups: [UpstreamGroup]

    private let phases: [Gauge]
    private let open: Gauge
    private let accepted: MirroredCounter
    /// Bytes received from and sent to clients and backends (`Traffic`).
    private let bytes: [MirroredCounter]
    private let acceptPauses: MirroredCounter
    private let inFlight: Gauge
    private let badRequests: MirroredCounter
    private var requests: [[MirroredCounter]] = []
    private var durations: [LoopHistogram] = []
    private var queueWaits: [LoopHistogram] = []
    private var queueLength: [Gauge] = []
    private var serverGauges: [[(active: Gauge, idle: Gauge, idleTarget: Gauge, up: Gauge, connects: MirroredCounter, errors: MirroredCounter, failures: MirroredCounter, requests: MirroredCounter)]] = []
    private let timeouts: [MirroredCounter]
    private let retries: MirroredCounter
    private let staleRetries: MirroredCounter
    private let truncated: MirroredCounter
    private let clientAborts: MirroredCounter
    private let tunnelsOpen: Gauge
    private let tunnelsTotal: MirroredCounter
    private let tunnelBytes: [MirroredCounter]
    private let h2Open: Gauge
    private let h2Total: MirroredCounter
    private let h2StreamsOpen: Gauge
    private let h2StreamsTotal: MirroredCounter
    private let h2Misbehaviour: MirroredCounter
    private let h2GoAways: [MirroredCounter]
    private let byProtocol: [MirroredCounter]
    private let accessLines: MirroredCounter
    private let accessDropped: MirroredCounter
    private let iterations: MirroredCounter
    private let busy: MirroredCounter
    private let tasks: Gauge
    private let rss: Gauge
    private let heap: Gauge
    private let heapFree: Gauge
    private let clientBuffers: Gauge
    private let upstreamBuffers: Gauge
    private let poolBytes: Gauge
    private let bufferLimit: Gauge
    private let fds: Gauge
    private let maxFDs: Gauge
    private let threads: Gauge
    private let cpu: MirroredCounter
    private let sockets: Gauge
    let tls: TLSMetrics
    /// Descriptors that are not sockets of the loop (epoll's own, stdio, a log file), counted once
    /// when the loop starts: after that `process_open_fds` is this plus the loop's registrations,
    /// kept as sockets open and close. Walking /proc/self/fd at every scrape cost the loop ~2 µs per
    /// descriptor, 20 ms at 10,000 connections, while every connection waited.
    private var otherFDs = 0
    private var lagProbe: LagProbe!

    init(ctx: ProxyContext, groups: [UpstreamGroup]) {
        self.ctx = ctx
        self.groups = groups
        let r = registry
        phases = ClientPhase.allCases.map {
            r.gauge("gatehouse_client_connections", "Client connections by state.", [("state", $0.label)])
        }
        open = r.gauge("gatehouse_client_connections_open", "Client connections open.")
        accepted = r.counter("gatehouse_accepted_connections_total", "Client connections accepted.")
        acceptPauses = r.counter("gatehouse_accept_pauses_total", "Times accepting paused (out of file descriptors or at max_connections).")
        inFlight = r.gauge("gatehouse_requests_in_flight", "Requests being proxied now.")
        badRequests = r.counter("gatehouse_bad_requests_total", "Requests refused as malformed or over a limit.")
        bytes = [("client", "in"), ("client", "out"), ("backend", "in"), ("backend", "out")].map { side, direction in
            r.counter("gatehouse_bytes_total", "Bytes received (in) and sent (out), on the client and backend sides (after TLS decryption where a side speaks TLS).",
                      [("side", side), ("direction", direction)])
        }
        let classes = ["1xx", "2xx", "3xx", "4xx", "5xx"]
        for g in groups {
            let b = g.config.name
            requests.append([r.counter("gatehouse_requests_total", "Requests answered, by backend and status class.", [("backend", b), ("status_class", "other")])]
                + classes.map { r.counter("gatehouse_requests_total", "Requests answered, by backend and status class.", [("backend", b), ("status_class", $0)]) })
            durations.append(r.latency("gatehouse_request_duration_seconds", "Time from request head to the end of the response.", [("backend", b)]))
            queueWaits.append(r.latency("gatehouse_upstream_queue_wait_seconds", "Time requests waited for an upstream connection.", [("backend", b)]))
            queueLength.append(r.gauge("gatehouse_upstream_queue_length", "Requests waiting for an upstream connection.", [("backend", b)]))
            serverGauges.append(g.servers.map { s in
                let l = [("backend", b), ("server", s.label)]
                return (r.gauge("gatehouse_upstream_connections", "Upstream connections by state.", l + [("state", "active")]),
                        r.gauge("gatehouse_upstream_connections", "Upstream connections by state.", l + [("state", "idle")]),
                        r.gauge("gatehouse_upstream_idle_target", "Idle connections the pool keeps when all come back: recent peak demand, decaying, at most max_idle.", l),
                        r.gauge("gatehouse_upstream_server_up", "1 while passive health keeps the server in rotation (with workers: in every worker).", l, across: .min),
                        r.counter("gatehouse_upstream_connects_total", "Upstream connections opened.", l),
                        r.counter("gatehouse_upstream_connect_errors_total", "Upstream connects that failed.", l),
                        r.counter("gatehouse_upstream_failures_total", "Upstream failures counted by passive health.", l),
                        r.counter("gatehouse_upstream_requests_total", "Requests sent whole to the server (retries included; a failed connect or send is an upstream failure).", l))
            })
            for s in g.servers {
                s.responseTimes = r.latency("gatehouse_upstream_response_seconds",
                                            "Time from a request sent to the server until its final response head arrived (nginx's $upstream_header_time).",
                                            [("backend", b), ("server", s.label)])
            }
        }
        timeouts = ProxyStats.Timeout.allCases.map { r.counter("gatehouse_timeouts_total", "Timeouts by kind.", [("kind", $0.label)]) }
        retries = r.counter("gatehouse_retries_total", "Requests retried.", [("reason", "failover")])
        staleRetries = r.counter("gatehouse_retries_total", "Requests retried.", [("reason", "stale_keepalive")])
        truncated = r.counter("gatehouse_upstream_truncated_responses_total", "Responses the backend ended early after they started (recorded as 502).")
        clientAborts = r.counter("gatehouse_client_aborts_total", "Requests given up because the client hung up first (recorded as 499).")
        tunnelsOpen = r.gauge("gatehouse_tunnels_open", "Upgraded connections (WebSocket and other Upgrade protocols) relaying now.")
        tunnelsTotal = r.counter("gatehouse_tunnels_total", "Upgraded connections opened (a backend answered 101).")
        tunnelBytes = ["client_to_backend", "backend_to_client"].map {
            r.counter("gatehouse_tunnel_bytes_total", "Bytes relayed through upgraded connections, by direction.", [("direction", $0)])
        }
        h2Open = r.gauge("gatehouse_http2_connections_open", "HTTP/2 client connections open (ALPN h2, or prior knowledge).")
        h2Total = r.counter("gatehouse_http2_connections_total", "HTTP/2 client connections opened.")
        h2StreamsOpen = r.gauge("gatehouse_http2_streams_open", "HTTP/2 request streams open.")
        h2StreamsTotal = r.counter("gatehouse_http2_streams_total", "HTTP/2 request streams opened (each one request).")
        h2Misbehaviour = r.counter("gatehouse_http2_misbehaviour_total", "Invalid frames and empty DATA frames from HTTP/2 clients (100 at once, or over 10 a second for long, on one connection get it a GOAWAY).")
        byProtocol = ["HTTP/1.1", "HTTP/2"].map {
            r.counter("gatehouse_requests_by_protocol_total", "Requests answered (as gatehouse_requests_total counts them), by the protocol the client spoke (HTTP/1.1 includes 1.0).", [("protocol", $0)])
        }
        h2GoAways = ProxyStats.GoAwayReason.allCases.map {
            r.counter("gatehouse_http2_goaways_sent_total", "GOAWAY frames sent to HTTP/2 clients, by error code.", [("reason", $0.label)])
        }
        accessLines = r.counter("gatehouse_access_log_lines_total", "Access-log lines made, one per request (those dropped included).")
        accessDropped = r.counter("gatehouse_access_log_dropped_total", "Access-log lines lost: the worker's ring was full (the supervisor did not keep up) or the supervisor was gone.")
        iterations = r.counter("gatehouse_loop_iterations_total", "Event loop turns.")
        busy = r.counter("gatehouse_loop_busy_seconds_total", "Seconds the loop spent working rather than waiting in epoll (utilization = rate of this).")
        tasks = r.gauge("gatehouse_tasks_live", "Swift tasks alive on the loop.")
        sockets = r.gauge("gatehouse_loop_sockets", "Sockets registered with the loop.")
        rss = r.gauge("process_resident_memory_bytes", "Resident memory size in bytes.")
        heap = r.gauge("gatehouse_heap_in_use_bytes", "Heap bytes in use (mallinfo2), measured each second while under 64 requests are in flight, else every 10 s.")
        heapFree = r.gauge("gatehouse_heap_free_bytes", "Free heap bytes malloc still holds (mallinfo2 fordblks), measured as gatehouse_heap_in_use_bytes.")
        let help = "Buffer memory held by connections: client = requests read from clients (heads and bodies), upstream = responses read from backends."
        clientBuffers = r.gauge("gatehouse_buffer_bytes", help, [("direction", "client")])
        upstreamBuffers = r.gauge("gatehouse_buffer_bytes", help, [("direction", "upstream")])
        bufferLimit = r.gauge("gatehouse_buffer_memory_limit_bytes", "limits.buffer_memory: beyond it no connection takes a second buffer (reads wait instead).")
        poolBytes = r.gauge("gatehouse_buffer_pool_bytes", "Bytes of free buffers cached for reuse.")
        fds = r.gauge("process_open_fds", "Number of open file descriptors: those open at start plus the loop's sockets (with workers: the most any worker has).", across: .max)
        maxFDs = r.gauge("process_max_fds", "Maximum number of open file descriptors (with workers: of one worker).", across: .max)
        threads = r.gauge("gatehouse_threads", "Threads in the process (one by design; with workers: the most any worker has).", across: .max)
        cpu = r.counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.")
        tls = TLSMetrics(registry: r, stats: ctx.tlsStats)
        r.gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds (with workers: the oldest live worker's).",
                across: .min).set(wallClockSeconds())
        r.gauge("gatehouse_build_info", "Always 1: the version of Gatehouse and of the OpenSSL library it runs with.",
                [("version", BuildInfo.version), ("openssl", BuildInfo.openSSL)], across: .max).set(1)
        let lag = r.latency("gatehouse_loop_lag_seconds", "How late a timer due every 100 ms ran: how long ready work waited for the loop (under 1 ms reads as none; epoll's timeout is in milliseconds).")
        lagProbe = LagProbe(interval: 100_000_000) { nanos in lag.record(Double(nanos) * 1e-9) }
        ctx.onRequestDone = { [unowned self] group, status, nanos in
            durations[group].record(Double(nanos) * 1e-9)
        }
        for (i, g) in groups.enumerated() {
            g.onQueueWait = { [unowned self] nanos in queueWaits[i].record(Double(nanos) * 1e-9) }
        }
    }

    /// Counts the descriptors that are not the loop's sockets and measures the heap; once, before the loop runs.
    func takeBaseline() {
        otherFDs = max(0, ProcessStats.openFDs() - EventLoop.shared.registeredSockets)
        ctx.measureHeap()
        lagProbe.start()
    }

    /// With workers: this worker's part in the metrics they share.
    private var shared: SharedMetrics?

    /// Joins the shared metrics of a supervisor's workers (before the loop runs) as the worker of
    /// `slot`, out of `workerSlots`.
    func share(_ slots: SharedSlots, slot: Int, workerSlots: Int) {
        guard registry.valueCount <= SharedSlots.capacity else { return }  // too many series to share: this worker's alone
        shared = SharedMetrics(slots: slots, slot: slot, workerSlots: workerSlots, registry: registry)
        publish()
    }

    /// Writes this worker's values to its slot (each second, and before a scrape it serves).
    func publish() {
        guard let s = shared else { return }
        refresh()
        s.publish(registry)
    }

    /// The exposition text: this process's values, or with workers the sums over every slot,
    /// with `worker="<slot>"` series for the figures that matter per worker.
    func render() -> [UInt8] {
        guard let s = shared else {
            refresh()
            return registry.render()
        }
        publish()
        let slots = s.readAll()
        var text = registry.render(slots: slots, perWorker: Self.perWorker)
        let live = slots.filter(\.alive).count
        text += Array("# HELP gatehouse_workers Worker processes running (during a reload, both generations).\n# TYPE gatehouse_workers gauge\ngatehouse_workers \(live)\n".utf8)
        var own = [Double](repeating: 0, count: SharedSlots.supervisorValues)
        let found = own.withUnsafeMutableBufferPointer { s.slots.read(slot: s.workerSlots, into: $0.baseAddress!, room: $0.count) }
        if let found, found.layout == SharedSlots.supervisorLayout {
            text += Array(Self.supervisorText(own).utf8)
        }
        return text
    }

    /// The supervisor's figures (see `SharedSlots.supervisorValues`).
    static func supervisorText(_ v: [Double]) -> String {
        """
        # HELP gatehouse_worker_restarts_total Workers that ended unasked and were started again (crashes, kills).
        # TYPE gatehouse_worker_restarts_total counter
        gatehouse_worker_restarts_total \(Int(v[0]))
        # HELP gatehouse_workers_configured Workers the configuration asks for.
        # TYPE gatehouse_workers_configured gauge
        gatehouse_workers_configured \(Int(v[1]))
        # HELP gatehouse_config_load_timestamp_seconds When the running configuration was loaded (unix seconds).
        # TYPE gatehouse_config_load_timestamp_seconds gauge
        gatehouse_config_load_timestamp_seconds \(v[2])
        # HELP gatehouse_config_generation The running configuration's generation: 1 at start, one more for each reload that took.
        # TYPE gatehouse_config_generation gauge
        gatehouse_config_generation \(Int(v[3]))
        # HELP gatehouse_reloads_total Reloads (SIGHUP), by result: ok, or failed (the config was refused or its workers did not start; nothing changed).
        # TYPE gatehouse_reloads_total counter
        gatehouse_reloads_total{result="ok"} \(Int(v[4]))
        gatehouse_reloads_total{result="failed"} \(Int(v[5]))

        """
    }

    static let perWorker: [(series: String, name: String, help: String, kind: MetricsRegistry.Kind)] = [
        ("gatehouse_client_connections_open", "gatehouse_worker_client_connections", "Client connections open, by worker.", .gauge),
        ("gatehouse_loop_busy_seconds_total", "gatehouse_worker_loop_busy_seconds_total", "Seconds each worker's loop worked (utilization = rate of this).", .counter),
        ("process_resident_memory_bytes", "gatehouse_worker_resident_memory_bytes", "Resident memory of each worker.", .gauge),
    ]

    /// Reads every counter and process fact into the registry.
    private func refresh() {
        let st = ctx.stats
        for p in ClientPhase.allCases { phases[p.rawValue].set(Double(st.clientPhases[p.rawValue])) }
        open.set(Double(st.clientConnections))
        accepted.set(total: st.acceptedTotal)
        for (c, v) in zip(bytes, [Traffic.fromClients, Traffic.toClients, Traffic.fromBackends, Traffic.toBackends]) { c.set(total: v) }
        acceptPauses.set(total: st.acceptPausesTotal)
        inFlight.set(Double(st.requestsInFlight))
        badRequests.set(total: st.badRequestsTotal)
        for (gi, g) in groups.enumerated() {
            for c in 0..<6 { requests[gi][c].set(total: g.requestsByClass[c]) }
            queueLength[gi].set(Double(g.queue.count))
            for (si, s) in g.servers.enumerated() {
                let m = serverGauges[gi][si]
                m.active.set(Double(s.pool.active))
                m.idle.set(Double(s.pool.idle.count))
                m.idleTarget.set(Double(min(s.pool.demand.estimate, s.pool.maxIdle)))
                m.up.set(Double(s.health.isAvailable(now: EventLoop.shared.now) ? 1 : 0))
                m.connects.set(total: s.connectsTotal)
                m.errors.set(total: s.connectErrorsTotal)
                m.failures.set(total: s.failuresTotal)
                m.requests.set(total: s.requestsTotal)
            }
        }
        for k in ProxyStats.Timeout.allCases { timeouts[k.rawValue].set(total: st.timeouts[k.rawValue]) }
        retries.set(total: st.retriesTotal)
        staleRetries.set(total: st.staleRetriesTotal)
        truncated.set(total: st.truncatedResponsesTotal)
        clientAborts.set(total: st.clientAbortsTotal)
        tunnelsOpen.set(Double(st.tunnelsOpen))
        tunnelsTotal.set(total: st.tunnelsTotal)
        tunnelBytes[0].set(total: st.tunnelBytesUp)
        tunnelBytes[1].set(total: st.tunnelBytesDown)
        h2Open.set(Double(st.h2ConnectionsOpen))
        h2Total.set(total: st.h2ConnectionsTotal)
        h2StreamsOpen.set(Double(st.h2StreamsOpen))
        h2StreamsTotal.set(total: st.h2StreamsTotal)
        h2Misbehaviour.set(total: st.h2Misbehaviour)
        let answered = groups.reduce(0) { sum, g in sum + (0..<6).reduce(0) { $0 + g.requestsByClass[$1] } }
        byProtocol[0].set(total: answered - st.h2RequestsTotal)
        byProtocol[1].set(total: st.h2RequestsTotal)
        for r in ProxyStats.GoAwayReason.allCases { h2GoAways[r.rawValue].set(total: st.h2GoAwaysSent[r.rawValue]) }
        accessLines.set(total: ctx.accessLog?.ring.lines ?? 0)
        accessDropped.set(total: ctx.accessLog?.ring.dropped ?? 0)
        let loop = EventLoop.shared
        iterations.set(total: Int(loop.iterations))
        busy.set(total: Double(loop.busyNanos) / 1e9)
        tasks.set(Double(loop.liveTasks))
        sockets.set(Double(loop.registeredSockets))
        rss.set(Double(ProcessStats.residentBytes()))
        heap.set(Double(ctx.heap.inUse))
        heapFree.set(Double(ctx.heap.free))
        clientBuffers.set(Double(ctx.clientBuffers.bytesInUse))
        upstreamBuffers.set(Double(ctx.upstreamBuffers.bytesInUse))
        bufferLimit.set(Double(ctx.config.limits.bufferMemory))
        poolBytes.set(Double(ctx.clientBuffers.bytesCached + ctx.upstreamBuffers.bytesCached))
        fds.set(Double(otherFDs + EventLoop.shared.registeredSockets))
        maxFDs.set(Double(ProcessStats.maxFDs()))
        threads.set(Double(ProcessStats.threadCount()))
        cpu.set(total: ProcessStats.cpuSeconds())
        tls.refresh()
    }
}
