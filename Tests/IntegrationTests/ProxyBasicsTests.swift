import Foundation
import Testing

/// Plain proxying behavior against the real binaries on 127.0.0.1.
@Suite("Proxying")
struct ProxyBasicsTests {
    @Test("forwards requests, rewrites hop-by-hop headers and adds X-Forwarded-*")
    func headers() throws {
        let be = try DemoBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port]))
        let r = try HTTP.request(port: gh.port, "GET /x?echo=1 HTTP/1.1\r\nHost: example.org\r\nConnection: X-Secret, keep-alive\r\nX-Secret: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\nUpgrade: websocket\r\nProxy-Connection: keep-alive\r\nX-Forwarded-For: 10.1.1.1\r\nX-Kept: yes\r\n\r\n")
        #expect(r.status == 200)
        let sent = r.text.lowercased()
        #expect(sent.hasPrefix("get /x?echo=1 http/1.1\r\n"))
        for gone in ["x-secret", "keep-alive:", "\r\nte:", "upgrade:", "proxy-connection", "connection:"] {
            #expect(!sent.contains(gone), "\(gone) was forwarded: \(sent)")
        }
        #expect(sent.contains("x-kept: yes"))
        #expect(sent.contains("host: example.org"))
        #expect(sent.contains("x-forwarded-for: 10.1.1.1, 127.0.0.1"))
        #expect(sent.contains("x-forwarded-proto: http"))
        #expect(sent.contains("x-forwarded-host: example.org"))
    }

    @Test("keep-alive reuse: many requests over few upstream connections")
    func keepAliveReuse() throws {
        let be = try DemoBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port]))
        let c = try Conn(port: gh.port)
        for i in 0..<300 {
            try c.send("GET /r\(i) HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try c.readResponse().status == 200)
        }
        let s = try be.stats()
        #expect(s["requests"]! >= 300)
        #expect(s["accepted"]! <= 2, "upstream connections: \(s)")
        #expect(try gh.metric("gatehouse_upstream_connects_total") <= 2)
    }

    @Test("pipelined requests are answered in order on one connection")
    func pipelining() throws {
        let be = try DemoBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port]))
        let c = try Conn(port: gh.port)
        try c.send("GET /a?size=3 HTTP/1.1\r\nHost: t\r\n\r\nPOST /b?echo=1 HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nbodyGET /c?size=5 HTTP/1.1\r\nHost: t\r\n\r\n")
        let a = try c.readResponse(), b = try c.readResponse(), d = try c.readResponse()
        #expect(a.status == 200 && a.body.count == 3)
        #expect(b.status == 200 && b.text.hasPrefix("POST /b?echo=1"))
        #expect(d.status == 200 && d.body.count == 5)
    }

    @Test("chunked bodies both ways, with trailers, and HEAD/204/304 have none")
    func chunked() throws {
        let be = try DemoBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port]))
        let c = try Conn(port: gh.port)
        try c.send("POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n")
        let up = try c.readResponse()
        #expect(up.status == 200 && up.text == "received 11\n", "\(up.text)")
        try c.send("GET /down?chunked=1&size=100000 HTTP/1.1\r\nHost: t\r\n\r\n")
        let down = try c.readResponse()
        #expect(down.header("Transfer-Encoding") == "chunked")
        #expect(down.body.count == 100_000)
        try c.send("HEAD /h?size=50 HTTP/1.1\r\nHost: t\r\n\r\n")
        let h = try c.readResponse(method: "HEAD")
        #expect(h.status == 200 && h.header("Content-Length") == "50")
        try c.send("GET /n?status=204 HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try c.readResponse().status == 204)
        try c.send("GET /n?status=304 HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try c.readResponse().status == 304)
        try c.send("GET /last HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try c.readResponse().status == 200)
    }

    @Test("HTTP/1.0 clients get a decoded body and the connection closes")
    func http10() throws {
        let be = try DemoBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port]))
        let c = try Conn(port: gh.port)
        try c.send("GET /?chunked=1&size=1000 HTTP/1.0\r\n\r\n")
        let r = try c.readResponse()
        #expect(r.status == 200 && r.body.count == 1000 && r.header("Transfer-Encoding") == nil)
        #expect(c.isClosedByPeer())
    }

    @Test("curl through the proxy, and Expect: 100-continue")
    func curl() throws {
        let be = try DemoBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port]))
        let r = try sh("curl -sS -o /dev/null -w '%{http_code}' http://127.0.0.1:\(gh.port)/hello")
        #expect(r.output == "200")
        let path = NSTemporaryDirectory() + "gh-upload-\(UUID().uuidString)"
        try Data(repeating: 65, count: 300_000).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let up = try sh("curl -sS -H 'Expect: 100-continue' --data-binary @\(path) http://127.0.0.1:\(gh.port)/upload")
        #expect(up.output == "received 300000\n", "\(up.output)")
    }
}

@Suite("One-line mode")
struct OneLineModeTests {
    @Test("--listen 127.0.0.1:0 --backend ... prints the bound address and proxies, with or without metrics")
    func oneLine() throws {
        let be = try DemoBackend()
        for metrics in ["off", "127.0.0.1:0"] {
            let gh = try Child(binDir + "/gatehouse", ["--listen", "127.0.0.1:0", "--backend", "127.0.0.1:\(be.port)", "--metrics", metrics])
            let port = boundPort(try gh.waitForLine(containing: "proxy listening on"))
            for _ in 0..<3 {
                #expect(try HTTP.get(port: port, "/").status == 200)
            }
        }
    }
}
