import HTTP1
import Runtime

/// Serves the demo backend's connections: one task per connection, answers shaped by the query.
final class DemoServer: @unchecked Sendable {
    struct Defaults {
        var delayMs: Int
        var size: Int
        var status: Int
        var chunked: Bool
    }

    let listener: Socket
    let defaults: Defaults
    var open = 0
    var peakOpen = 0
    var accepted = 0
    var requests = 0
    var bodyBytes = 0
    /// A body's worth of 'x' to send from.
    let filler: UnsafeMutableRawBufferPointer = {
        let b = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 * 1024, alignment: 8)
        b.initializeMemory(as: UInt8.self, repeating: UInt8(ascii: "x"))
        return b
    }()

    init(listener: Socket, defaults: Defaults) {
        self.listener = listener
        self.defaults = defaults
    }

    @LoopActor
    func acceptLoop() async {
        while true {
            do {
                let a = try await TCP.accept(listener)
                guard let s = Socket(fd: a.fd) else { continue }
                accepted += 1
                open += 1
                peakOpen = max(peakOpen, open)
                spawnOnLoop { await self.serve(s) }
            } catch {
                await sleep(until: EventLoop.shared.now + 50_000_000)
            }
        }
    }

    struct Shape {
        var delayMs = 0, size = 0, status = 200
        var chunked = false, close = false, drop = false, reset = false, hang = false, echo = false, stats = false
    }

    func shape(_ target: String) -> Shape {
        var s = Shape(delayMs: defaults.delayMs, size: defaults.size, status: defaults.status, chunked: defaults.chunked)
        let pieces = target.split(separator: "?", maxSplits: 1)
        if pieces.first == "/__stats" { s.stats = true }
        guard pieces.count == 2 else { return s }
        for kv in pieces[1].split(separator: "&") {
            let p = kv.split(separator: "=", maxSplits: 1)
            let v = p.count == 2 ? String(p[1]) : "1"
            switch p[0] {
            case "delay_ms": s.delayMs = Int(v) ?? s.delayMs
            case "size": s.size = Int(v) ?? s.size
            case "status": s.status = Int(v) ?? s.status
            case "chunked": s.chunked = v == "1"
            case "close": s.close = v == "1"
            case "drop": s.drop = v == "1"
            case "reset": s.reset = v == "1"
            case "hang": s.hang = v == "1"
            case "echo": s.echo = v == "1"
            default: break
            }
        }
        return s
    }

    @LoopActor
    func serve(_ sock: Socket) async {
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 8)
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 8)
        defer {
            buf.deallocate()
            out.deallocate()
            sock.close()
            open -= 1
        }
        var parser = HeadParser(kind: .request)
        var have = 0
        let forever: UInt64 = EventLoop.shared.now + 3_600_000_000_000
        while true {
            // Head.
            parser.reset()
            var complete = false
            while !complete {
                if have > 0 {
                    switch parser.parse(UnsafeRawBufferPointer(rebasing: buf[0..<have])) {
                    case .complete: complete = true; continue
                    case .error: return
                    case .needMore: if have == buf.count { return }
                    }
                }
                guard let n = try? await sock.read(into: UnsafeMutableRawBufferPointer(rebasing: buf[have...]), until: forever), n > 0 else { return }
                have += n
            }
            let head = parser.head
            let target = UnsafeRawBufferPointer(buf).string(head.target)
            let s = shape(target)
            if !s.stats { requests += 1 }
            let echo = s.echo ? Array(UnsafeRawBufferPointer(rebasing: buf[0..<head.end])) : []
            // Body: read and count.
            var framer = BodyFramer(head.requestFraming)
            var used = head.end
            var received = 0
            // Count payload bytes (chunk framing and trailers excluded).
            bodyLoop: while true {
                switch framer.next(UnsafeRawBufferPointer(rebasing: buf[used..<have])) {
                case .data(_, let count, let consumed):
                    received += count
                    used += consumed
                case .framing(let consumed):
                    used += consumed
                case .end(let consumed):
                    used += consumed
                    break bodyLoop
                case .error:
                    return
                case .needMore:
                    have = 0
                    used = 0
                    guard let n = try? await sock.read(into: buf, until: forever), n > 0 else { return }
                    have = n
                }
            }
            bodyBytes += received
            // Keep pipelined bytes.
            if used < have { buf.baseAddress!.copyMemory(from: buf.baseAddress! + used, byteCount: have - used) }
            have -= used

            if s.hang { await sleep(until: forever); return }
            if s.delayMs > 0 { await sleep(until: EventLoop.shared.now + UInt64(s.delayMs) * 1_000_000) }
            if s.reset { sock.abort(); return }
            let keep = head.keepAlive && !s.close
            var body: [UInt8] = []
            var bodySize = s.size
            if s.stats {
                body = Array("{\"accepted\":\(accepted),\"open\":\(open),\"peak_open\":\(peakOpen),\"requests\":\(requests),\"body_bytes\":\(bodyBytes)}\n".utf8)
                bodySize = body.count
            } else if s.echo {
                body = echo
                bodySize = body.count
            } else if received > 0 && s.size == defaults.size {
                body = Array("received \(received)\n".utf8)
                bodySize = body.count
            }
            let noBody = head.methodKind == .head || s.status == 204 || s.status == 304
            var h = "HTTP/1.1 \(s.status) \(s.status == 200 ? "OK" : "Status")\r\nServer: gatehouse-backend\r\n"
            if s.chunked && !noBody { h += "Transfer-Encoding: chunked\r\n" } else if s.status != 204 && s.status != 304 { h += "Content-Length: \(bodySize)\r\n" }
            if !keep { h += "Connection: close\r\n" }
            h += "\r\n"
            var n = 0
            for byte in h.utf8 { out[n] = byte; n += 1 }
            do {
                if noBody {
                    try await sock.write(UnsafeRawBufferPointer(rebasing: out[0..<n]), until: forever)
                } else if !body.isEmpty {
                    try await writeBody(sock, out, n, body, chunked: s.chunked, deadline: forever)
                } else {
                    try await writeFiller(sock, out, n, bodySize, chunked: s.chunked, deadline: forever)
                }
            } catch {
                return
            }
            if !keep || s.drop { return }
        }
    }

    @LoopActor
    private func writeBody(_ sock: Socket, _ out: UnsafeMutableRawBufferPointer, _ headLen: Int, _ body: [UInt8], chunked: Bool, deadline: UInt64) async throws(IOError) {
        var n = headLen
        var all: [UInt8] = Array(UnsafeRawBufferPointer(rebasing: out[0..<n]))
        if chunked { all += Array(String(body.count, radix: 16).utf8) + [13, 10] + body + Array("\r\n0\r\n\r\n".utf8) } else { all += body }
        n = all.count
        let tmp = UnsafeMutableRawBufferPointer.allocate(byteCount: n, alignment: 1)
        defer { tmp.deallocate() }
        tmp.copyBytes(from: all)
        try await sock.write(UnsafeRawBufferPointer(tmp), until: deadline)
    }

    @LoopActor
    private func writeFiller(_ sock: Socket, _ out: UnsafeMutableRawBufferPointer, _ headLen: Int, _ size: Int, chunked: Bool, deadline: UInt64) async throws(IOError) {
        let chunk = 16 * 1024
        if !chunked {
            // The head and the first part of the body in one write.
            let first = min(size, out.count - headLen)
            (out.baseAddress! + headLen).copyMemory(from: filler.baseAddress!, byteCount: first)
            try await sock.write(UnsafeRawBufferPointer(rebasing: out[0..<(headLen + first)]), until: deadline)
            var left = size - first
            var sinceYield = 0
            while left > 0 {
                let k = min(left, filler.count)
                try await sock.write(UnsafeRawBufferPointer(rebasing: filler[0..<k]), until: deadline)
                left -= k
                // A big body the kernel takes at once would hold the loop for the whole of it:
                // other connections get their turn every 256 KiB.
                sinceYield += k
                if sinceYield >= 256 * 1024 {
                    sinceYield = 0
                    await Task.yield()
                }
            }
            return
        }
        try await sock.write(UnsafeRawBufferPointer(rebasing: out[0..<headLen]), until: deadline)
        var left = size
        while left > 0 {
            let k = min(left, chunk)
            let line = Array((String(k, radix: 16) + "\r\n").utf8)
            var m = 0
            for b in line { out[m] = b; m += 1 }
            (out.baseAddress! + m).copyMemory(from: filler.baseAddress!, byteCount: k)
            m += k
            out[m] = 13; out[m + 1] = 10
            m += 2
            try await sock.write(UnsafeRawBufferPointer(rebasing: out[0..<m]), until: deadline)
            left -= k
        }
        let end: StaticString = "0\r\n\r\n"
        try await sock.write(UnsafeRawBufferPointer(start: end.utf8Start, count: end.utf8CodeUnitCount), until: deadline)
    }
}
