import HTTP1
import Runtime

/// The metrics listener: GET /metrics (Prometheus text), GET /health (200 serving, 503
/// draining), and the live status page (GET /status, polling GET /status.json), with keep-alive
/// for scrapers and browsers; HEAD of each too. On the same loop as the proxy, with its own port.
final class MetricsEndpoint: @unchecked Sendable {
    let socket: Socket
    let metrics: ProxyMetrics
    unowned let ctx: ProxyContext
    /// Connections just accepted or with a request being answered: a drain waits for them, so a
    /// scrape that reached this worker as a reload replaced it gets its answer, not a reset.
    private(set) var answering = 0
    /// A reload's new generation serves /metrics and /health now: this worker stops accepting,
    /// and what it still answers says the instance is healthy (it is; only this worker drains).
    private var handedOver = false

    func handOver() {
        handedOver = true
        socket.close()
    }

    init(socket: Socket, metrics: ProxyMetrics, ctx: ProxyContext) {
        self.socket = socket
        self.metrics = metrics
        self.ctx = ctx
    }

    @LoopActor
    func run() async {
        while true {
            guard let a = try? await TCP.accept(socket) else {
                if socket.isClosed { return }
                await sleep(until: EventLoop.shared.now + 100_000_000)
                continue
            }
            guard let s = Socket(fd: a.fd) else { continue }
            spawnOnLoop { await self.serve(s) }
        }
    }

    @LoopActor
    private func serve(_ s: Socket) async {
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: 8192, alignment: 8)
        var counted = false
        func busy(_ now: Bool) {
            if now != counted { answering += now ? 1 : -1 }
            counted = now
        }
        busy(true)  // its first request is on its way
        defer {
            busy(false)
            buf.deallocate()
            s.close()
        }
        var parser = HeadParser(kind: .request, limits: HeadLimits(maxHeadBytes: 8192, maxTargetBytes: 2048, maxHeaders: 64))
        var have = 0
        while true {
            // Bytes already buffered first: a request pipelined behind the last one is answered
            // without waiting for bytes that may never come.
            let result = parser.parse(UnsafeRawBufferPointer(rebasing: buf[0..<have]))
            if result == .needMore {
                if have == buf.count { return }
                let deadline = EventLoop.shared.now + 30_000_000_000
                guard let n = try? await s.read(into: UnsafeMutableRawBufferPointer(rebasing: buf[have...]), until: deadline), n > 0 else { return }
                have += n
                continue
            }
            guard result == .complete else {
                await send(s, status: "400 Bad Request", type: "text/plain", body: Array("bad request\n".utf8), close: true)
                return
            }
            let head = parser.head
            let target = UnsafeRawBufferPointer(buf).string(head.target)
            let path = target.split(separator: "?").first.map(String.init) ?? target
            // Draining, each connection closes after its answer (a new generation serves the rest).
            let keep = head.keepAlive && !ctx.draining
            busy(true)
            let a = answer(path)
            await send(s, status: a.status, type: a.type, body: a.body, close: !keep, head: head.methodKind == .head)
            if !keep { return }
            busy(false)  // idle until its next request
            // Keep any pipelined bytes after this request (GETs have no body).
            let used = head.end
            if have > used { buf.baseAddress!.copyMemory(from: buf.baseAddress! + used, byteCount: have - used) }
            have -= used
            parser.reset()
        }
    }

    /// What a GET (or HEAD) of `path` answers.
    private func answer(_ path: String) -> (status: String, type: String, body: [UInt8]) {
        switch path {
        case "/metrics":
            return ("200 OK", "text/plain; version=0.0.4; charset=utf-8", metrics.render())
        case "/status.json":
            let snapshot = StatusSnapshot(exposition: metrics.render()).json(time: wallClockSeconds())
            return ("200 OK", "application/json", Array(snapshot.text.utf8))
        case "/status":
            return ("200 OK", "text/html; charset=utf-8", StatusPage.html)
        case "/health":
            return ctx.draining && !handedOver ? ("503 Service Unavailable", "text/plain", Array("draining\n".utf8)) : ("200 OK", "text/plain", Array("ok\n".utf8))
        default:
            return ("404 Not Found", "text/plain", Array("not found\n".utf8))
        }
    }

    @LoopActor
    private func send(_ s: Socket, status: String, type: String, body: [UInt8], close: Bool, head: Bool = false) async {
        var out = Array("HTTP/1.1 \(status)\r\nServer: gatehouse\r\nContent-Type: \(type)\r\nContent-Length: \(body.count)\r\n\(close ? "Connection: close\r\n" : "")\r\n".utf8)
        if !head { out += body }
        let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: out.count, alignment: 1)
        defer { raw.deallocate() }
        raw.copyBytes(from: out)
        try? await s.write(UnsafeRawBufferPointer(raw), until: EventLoop.shared.now + 10_000_000_000)
    }
}
