import Foundation
import Glibc
import Testing

/// Every end of a message is seen: EOF and resets that come with the last bytes, responses cut
/// short, clients that leave while their request waits, and error answers that must not be lost.
@Suite("Ends of messages")
struct EndOfMessageTests {
    @Test("a close-delimited response ends when the backend closes, even when the FIN comes with the last bytes")
    func closeDelimited() throws {
        let be = try ScriptedBackend { fd, _ in
            // Corked, the bytes wait for the close and leave with the FIN in one segment: one
            // epoll event says both, as it often does with real backends under load.
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_CORK, &one, socklen_t(MemoryLayout<Int32>.size))
            ScriptedBackend.write(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello, until close")
            return .close
        }
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port]))
        for i in 0..<20 {
            let c = try Conn(port: gh.port, timeout: 5)
            try c.send("GET /\(i) HTTP/1.1\r\nHost: t\r\n\r\n")
            let r = try c.readResponse()
            #expect(r.status == 200 && r.text == "hello, until close", "try \(i)")
        }
        #expect(try gh.metric("gatehouse_requests_in_flight") == 0)
    }

    @Test("a response cut short (too few bytes, or a reset) is truncated: the client connection closes, it is not a 2xx, and it counts against the server")
    func truncated() throws {
        let be = try ScriptedBackend { fd, head in
            ScriptedBackend.write(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
            usleep(50_000)
            return head.hasPrefix("GET /reset") ? .reset : .close
        }
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port], backendExtra: "max_fails 100;"))
        for path in ["/short", "/reset"] {
            let c = try Conn(port: gh.port, timeout: 5)
            try c.send("GET \(path) HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(throws: TestFailure.self, "\(path): a short body must never look whole") { try c.readResponse() }
        }
        #expect(try gh.metric("gatehouse_upstream_truncated_responses_total") == 2)
        #expect(try gh.metric("gatehouse_requests_total{backend=\"b\",status_class=\"2xx\"}") == 0)
        #expect(try gh.metric("gatehouse_upstream_failures_total{backend=\"b\"") == 2)
        #expect(try eventually(2) { try gh.metric("gatehouse_requests_in_flight") == 0 })
    }

    @Test("clients that hang up while their request waits on a backend are noticed at once: both connections close (499)")
    func clientHangsUp() throws {
        let be = try DemoBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port]))
        _ = try HTTP.get(port: gh.port, "/warm")
        let baseline = try gh.openFDs()
        var clients: [Conn] = []
        for i in 0..<100 {
            let c = try Conn(port: gh.port)
            try c.send("GET /?hang=1&n=\(i) HTTP/1.1\r\nHost: t\r\n\r\n")
            clients.append(c)
        }
        #expect(try eventually(5) { try gh.metric("gatehouse_requests_in_flight") == 100 })
        clients.removeAll()  // close every client
        #expect(try eventually(2) { try gh.metric("gatehouse_requests_in_flight") == 0 })
        #expect(try gh.metric("gatehouse_client_aborts_total") == 100)
        #expect(try gh.metric("gatehouse_upstream_connections{backend=\"b\",server=\"127.0.0.1:\(be.port)\",state=\"active\"}") == 0)
        // Connections opened for a request whose client left before anything was sent on them
        // are pooled (they are clean); every other descriptor is gone.
        let idle = "gatehouse_upstream_connections{backend=\"b\",server=\"127.0.0.1:\(be.port)\",state=\"idle\"}"
        let settled = try eventually(3) { try gh.openFDs() - gh.metric(idle) <= baseline }
        let (fds, pooled) = (try gh.openFDs(), try gh.metric(idle))
        #expect(settled, "open fds \(fds), idle \(pooled), before \(baseline)")
        #expect(try HTTP.get(port: gh.port, "/after").status == 200)
    }

    @Test("clients that hang up while their request waits in the upstream queue leave it at once")
    func queuedClientsHangUp() throws {
        let be = try DemoBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port], backendExtra: "max_connections 10; queue_timeout 60s;"))
        // Ten clients that stay hold every connection; forty more queue behind them and leave.
        var holders: [Conn] = []
        for i in 0..<10 {
            let c = try Conn(port: gh.port)
            try c.send("GET /?hang=1&holder=\(i) HTTP/1.1\r\nHost: t\r\n\r\n")
            holders.append(c)
        }
        #expect(try eventually(5) { try gh.metric("gatehouse_requests_in_flight") == 10 })
        var clients: [Conn] = []
        for i in 0..<40 {
            let c = try Conn(port: gh.port)
            try c.send("GET /?hang=1&n=\(i) HTTP/1.1\r\nHost: t\r\n\r\n")
            clients.append(c)
        }
        #expect(try eventually(5) { try gh.metric("gatehouse_upstream_queue_length{backend=\"b\"}") == 40 })
        clients.removeAll()
        #expect(try eventually(2) { try gh.metric("gatehouse_upstream_queue_length{backend=\"b\"}") == 0 })
        #expect(try gh.metric("gatehouse_requests_in_flight") == 10)
        #expect(try gh.metric("gatehouse_client_aborts_total") == 40)
        #expect(try gh.metric("gatehouse_timeouts_total{kind=\"queue\"}") == 0)
        holders.removeAll()
        #expect(try eventually(2) { try gh.metric("gatehouse_requests_in_flight") == 0 })
        #expect(try HTTP.get(port: gh.port, "/after").status == 200)
    }

    @Test("1xx interim responses reach HTTP/1.1 clients and never HTTP/1.0 ones")
    func interimTo10() throws {
        let be = try ScriptedBackend { fd, _ in
            ScriptedBackend.write(fd, "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            return .keepOpen
        }
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port]))
        let c10 = try Conn(port: gh.port, timeout: 5)
        try c10.send("GET / HTTP/1.0\r\n\r\n")
        _ = c10.isClosedByPeer()
        let text10 = String(decoding: c10.pending, as: UTF8.self)
        #expect(text10.hasPrefix("HTTP/1.1 200 "), "\(text10.debugDescription)")
        #expect(!text10.contains("103"))
        let c11 = try Conn(port: gh.port, timeout: 5)
        try c11.send("GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        _ = c11.isClosedByPeer()
        let text11 = String(decoding: c11.pending, as: UTF8.self)
        #expect(text11.hasPrefix("HTTP/1.1 103 Early Hints\r\n") && text11.contains("HTTP/1.1 200 OK"))
    }

    @Test("a request head that fills the whole buffer gets 431, not a silent close")
    func headFillsBuffer() throws {
        let be = try DemoBackend()
        // A head limit equal to what the buffer holds (8176 = two pages less the buffer's own
        // header): the buffer fills before the limit is passed.
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port], top: "buffer_size 8176; limits { max_header_bytes 8176; }"))
        let c = try Conn(port: gh.port, timeout: 5)
        try c.send("GET / HTTP/1.1\r\nHost: a\r\nX-Long: " + String(repeating: "a", count: 9000))
        #expect(try c.readResponse().status == 431)
        #expect(try be.stats()["requests"] == 0)
    }

    @Test("errors while a request body streams get an answer: 408 for a stalled body, 400 for bad chunking, 413 over the limit")
    func bodyErrorsAnswered() throws {
        let be = try DemoBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port], top: "timeouts { client_body 300ms; } limits { max_body_bytes 100k; }"))
        let stalled = try Conn(port: gh.port, timeout: 5)
        try stalled.send("POST /?echo=1 HTTP/1.1\r\nHost: t\r\nContent-Length: 50000\r\n\r\n0123456789")
        #expect(try stalled.readResponse().status == 408)
        #expect(stalled.isClosedByPeer())

        let badChunk = try Conn(port: gh.port, timeout: 5)
        try badChunk.send("POST /?echo=1 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        usleep(100_000)
        try badChunk.send("zz\r\nnot a chunk\r\n")
        #expect(try badChunk.readResponse().status == 400)

        let tooBig = try Conn(port: gh.port, timeout: 5)
        try tooBig.send("POST /?echo=1 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        let chunk = "4000\r\n" + String(repeating: "x", count: 0x4000) + "\r\n"
        for _ in 0..<8 { try? tooBig.send(chunk) }
        #expect(try tooBig.readResponse().status == 413)
        #expect(try gh.metric("gatehouse_requests_in_flight") == 0)
    }

    @Test("an error answer is not lost to a reset while the client is still sending (lingering close)")
    func lingeringClose() throws {
        let be = try DemoBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port], top: "limits { max_body_bytes 1000; }"))
        for _ in 0..<5 {
            let c = try Conn(port: gh.port, timeout: 5)
            try c.send("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3000000\r\n\r\n")
            let block = [UInt8](repeating: 0x61, count: 65536)
            var sendErrors = 0
            for _ in 0..<30 { do { try c.send(block) } catch { sendErrors += 1 } }
            #expect(sendErrors == 0, "the proxy reset the connection while the body was still coming")
            #expect(try c.readResponse().status == 413)
            // While it lingers the connection holds no buffer.
            #expect(try eventually(2) { try gh.metric("gatehouse_buffer_bytes{direction=\"client\"}") == 0 })
        }
    }

    @Test("an HTTP/1.0 client is never sent 100 Continue")
    func noContinueTo10() throws {
        let be = try DemoBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port]))
        let c = try Conn(port: gh.port, timeout: 5)
        try c.send("POST /?echo=1 HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        usleep(300_000)
        try c.send("hello")
        _ = c.isClosedByPeer()
        let text = String(decoding: c.pending, as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 200 "), "\(text.prefix(80).debugDescription)")
    }
}
