import Foundation
import Glibc
import Testing

/// Backend slots are never held at a client's pace: bodies are read before a connection is
/// leased, responses are read ahead of the client, buffer memory has a budget, and a client
/// slower than `min_rate` is let go.
@Suite("Buffering and the minimum data rate", .serialized)
struct BufferingTests {
    /// One backend connection, and a short queue wait: a slot held by a slow client shows as 503.
    static let oneSlot = "max_connections 1; max_idle 1; queue_timeout 1s;"

    @Test("a slow uploader holds no backend slot: its body is read before a connection is leased")
    func slowBodyHoldsNoSlot() throws {
        let be = try DemoBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port], backendExtra: Self.oneSlot))
        let slow = try Conn(port: gh.port)
        try slow.send("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2000\r\n\r\n" + String(repeating: "a", count: 100))
        usleep(200_000)
        let t0 = Date()
        let r = try HTTP.get(port: gh.port, "/?size=3")
        #expect(r.status == 200)
        #expect(Date().timeIntervalSince(t0) < 0.9, "the other request waited for the uploader's slot")
        try slow.send(String(repeating: "a", count: 1900))
        let done = try slow.readResponse(method: "POST")
        #expect(done.status == 200 && done.text == "received 2000\n")
    }

    @Test("a response within response_buffer is read ahead: a client that does not read holds no backend slot")
    func readAheadFreesSlot() throws {
        let be = try DemoBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port], backendExtra: Self.oneSlot, top: "response_buffer 8m;"))
        let size = 6_000_000  // more than the kernel's send and receive buffers hold between us and it
        let reader = try Conn(port: gh.port, smallReceiveBuffer: true)
        try reader.send("GET /?size=\(size) HTTP/1.1\r\nHost: t\r\n\r\n")
        usleep(500_000)
        let t0 = Date()
        let r = try HTTP.get(port: gh.port, "/?size=3")
        #expect(r.status == 200)
        #expect(Date().timeIntervalSince(t0) < 0.9, "the other request waited for the reader's slot")
        #expect(try gh.metric("gatehouse_buffer_bytes{direction=\"upstream\"}") > 1_000_000)
        let full = try reader.readResponse()
        #expect(full.status == 200 && full.body.count == size)
    }

    @Test("buffer_memory bounds the read-ahead: beyond it the backend waits for the client (backpressure)")
    func budgetBackpressure() throws {
        let be = try DemoBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port], backendExtra: Self.oneSlot,
                                                                      top: "response_buffer 8m; limits { buffer_memory 1m; }"))
        let size = 6_000_000
        let reader = try Conn(port: gh.port, smallReceiveBuffer: true)
        try reader.send("GET /?size=\(size) HTTP/1.1\r\nHost: t\r\n\r\n")
        usleep(500_000)
        let held = try gh.metric("gatehouse_buffer_bytes{direction=\"upstream\"}")
        #expect(held > 0 && held <= 1_100_000, "upstream buffers \(held) bytes with a 1m budget")
        #expect(try gh.metric("gatehouse_buffer_memory_limit_bytes") == 1_048_576)
        let full = try reader.readResponse()
        #expect(full.status == 200 && full.body.count == size)
    }

    @Test("a body sent slower than min_rate gets 408 after the grace period, counted by kind")
    func slowBodyMinRate() throws {
        let be = try DemoBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port], top: "limits { min_rate 1000; min_rate_grace 1s; }"))
        let c = try Conn(port: gh.port)
        try c.send("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n")
        let t0 = Date()
        var answered: Response?
        for _ in 0..<40 {  // 10 bytes every 100 ms: 100 B/s
            try? c.send(String(repeating: "a", count: 10))
            var p = pollfd(fd: c.fd, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, 100) > 0 {
                answered = try c.readResponse(method: "POST")
                break
            }
        }
        #expect(answered?.status == 408)
        let took = Date().timeIntervalSince(t0)
        #expect(took > 0.9 && took < 2.5, "closed after \(took) s with a 1 s grace")
        #expect(try gh.metric("gatehouse_timeouts_total{kind=\"request_min_rate\"}") == 1)
    }

    @Test("a reader slower than min_rate is let go even when the kernel's send queue holds its whole response")
    func slowReaderMinRate() throws {
        let be = try DemoBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port], top: "limits { min_rate 1000; min_rate_grace 1s; }"))
        let reader = try Conn(port: gh.port, smallReceiveBuffer: true)
        try reader.send("GET /?size=1000000 HTTP/1.1\r\nHost: t\r\n\r\n")
        var closed = false
        for _ in 0..<50 where !closed {
            usleep(100_000)
            closed = try gh.metric("gatehouse_timeouts_total{kind=\"response_min_rate\"}") == 1
        }
        #expect(closed, "the slow reader was not let go within 5 s")
        #expect(try gh.metric("gatehouse_client_connections_open") == 0)
        // A reader at full speed is never touched.
        let r = try HTTP.get(port: gh.port, "/?size=1000000")
        #expect(r.status == 200 && r.body.count == 1_000_000)
    }

    @Test("a body larger than one buffer, with Expect: 100-continue and a request pipelined after it")
    func spooledBodyThenPipelined() throws {
        let be = try DemoBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port]))
        let c = try Conn(port: gh.port)
        try c.send("POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 40000\r\n\r\n")
        while c.pending.firstRange(of: [13, 10, 13, 10]) == nil { guard try c.fill() else { break } }
        let interim = String(decoding: c.pending, as: UTF8.self)
        #expect(interim.hasPrefix("HTTP/1.1 100 Continue\r\n\r\n"), "no 100 before the body was sent: \(interim.debugDescription)")
        c.pending.removeFirst(min(c.pending.count, 25))
        try c.send(String(repeating: "b", count: 40000) + "GET /?size=3 HTTP/1.1\r\nHost: t\r\n\r\n")
        let first = try c.readResponse(method: "POST")
        #expect(first.status == 200 && first.text == "received 40000\n")
        let second = try c.readResponse()
        #expect(second.status == 200 && second.body.count == 3)
    }

    @Test("a client that does not read has at most 64 KiB unsent in the kernel; the rest waits in the bounded response queue")
    func unsentCapped() throws {
        let be = try DemoBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port]))
        let reader = try Conn(port: gh.port, smallReceiveBuffer: true)
        try reader.send("GET /?size=1000000 HTTP/1.1\r\nHost: t\r\n\r\n")
        usleep(500_000)
        let queued = try #require(Self.sendQueue(serverPort: gh.port, clientFD: reader.fd))
        // Unsent (64 KiB) plus in flight (the reader's small window); without the cap Linux lets
        // the proxy's send buffer take the whole megabyte.
        #expect(queued < 100_000, "\(queued) bytes in the proxy's send queue for a client that reads nothing")
        #expect(try gh.metric("gatehouse_buffer_bytes{direction=\"upstream\"}") > 200_000)
        let full = try reader.readResponse()
        #expect(full.status == 200 && full.body.count == 1_000_000)
    }

    @Test("a stream that pauses: what the proxy holds reaches a client that keeps reading, without waiting for the backend's next bytes")
    func pausedStreamDrains() throws {
        let size = 300 * 1024
        let be = try ScriptedBackend { fd, _ in
            ScriptedBackend.write(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + String(size, radix: 16) + "\r\n" + String(repeating: "s", count: size) + "\r\n")
            usleep(2_000_000)  // the stream pauses, as an event stream does between events
            ScriptedBackend.write(fd, "0\r\n\r\n")
            return .keepOpen
        }
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port]))
        let reader = try Conn(port: gh.port, smallReceiveBuffer: true)  // so the proxy must hold some
        let t0 = Date()
        try reader.send("GET /events HTTP/1.1\r\nHost: t\r\n\r\n")
        while reader.pending.count < size, try reader.fill() {}
        let took = Date().timeIntervalSince(t0)
        #expect(took < 1.5, "the first \(size) bytes took \(took) s: they waited for the backend's next bytes")
        let full = try reader.readResponse()
        #expect(full.status == 200 && full.body.count == size)
    }

    /// The proxy-side socket's send queue (tx_queue in /proc/net/tcp) for the connection from
    /// `clientFD` to `serverPort`.
    static func sendQueue(serverPort: UInt16, clientFD: Int32) -> Int? {
        var addr = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(clientFD, $0, &len) } }
        let local = String(format: ":%04X", serverPort), remote = String(format: ":%04X", UInt16(bigEndian: addr.sin_port))
        guard let data = FileHandle(forReadingAtPath: "/proc/net/tcp")?.readDataToEndOfFile() else { return nil }
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n").dropFirst() {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count > 4, f[1].hasSuffix(local), f[2].hasSuffix(remote) else { continue }
            return Int(f[4].split(separator: ":")[0], radix: 16)
        }
        return nil
    }
}
