import Foundation
import Glibc
import Testing

/// Bad input and bad backends: the right status, nothing lost, other connections carry on.
@Suite("Failures")
struct FailureTests {
    @Test("malformed requests get the right 4xx and the connection closes; nothing reaches the backend")
    func malformed() throws {
        let be = try DemoBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port], top: "limits { max_uri_bytes 1k; max_header_bytes 4k; max_body_bytes 1000; }"))
        let cases: [(String, Int)] = [
            ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n folded\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\n\r\n", 400),
            ("GET /" + String(repeating: "a", count: 2000) + " HTTP/1.1\r\nHost: a\r\n\r\n", 414),
            ("GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "b", count: 5000) + "\r\n\r\n", 431),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n", 413),
            ("GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505),
            ("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        ]
        for (raw, status) in cases {
            let c = try Conn(port: gh.port)
            try c.send(raw)
            let r = try c.readResponse()
            #expect(r.status == status, "\(raw.prefix(60).debugDescription)")
            #expect(c.isClosedByPeer(), "connection left open after \(status)")
        }
        #expect(try be.stats()["requests"] == 0)
        #expect(try HTTP.get(port: gh.port, "/still-fine").status == 200)
    }

    @Test("a dead backend gets a 502; a stalled one a 504; a full queue a 503 with Retry-After")
    func badBackends() throws {
        // 502: nothing listens there.
        let dead = try GatehouseProcess(config: GatehouseProcess.config(backends: [1]))
        #expect(try HTTP.get(port: dead.port, "/").status == 502)

        // 504: the backend never answers.
        let be = try DemoBackend()
        let slow = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port], top: "timeouts { upstream_header 500ms; }"))
        let t0 = Date()
        #expect(try HTTP.get(port: slow.port, "/?hang=1").status == 504)
        #expect(Date().timeIntervalSince(t0) < 5)
        #expect(try slow.metric("gatehouse_timeouts_total{kind=\"upstream_header\"}") == 1)

        // 503: one connection allowed, no queue.
        let full = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port], backendExtra: "max_connections 1; queue_size 0;"))
        let busy = try Conn(port: full.port)
        try busy.send("GET /?delay_ms=1500 HTTP/1.1\r\nHost: t\r\n\r\n")
        usleep(300_000)
        let r = try HTTP.get(port: full.port, "/")
        #expect(r.status == 503 && r.header("Retry-After") == "1")
        #expect(try busy.readResponse().status == 200)

        // 503 after the queue timeout.
        let queued = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port], backendExtra: "max_connections 1; queue_timeout 300ms;"))
        let busy2 = try Conn(port: queued.port)
        try busy2.send("GET /?delay_ms=1500 HTTP/1.1\r\nHost: t\r\n\r\n")
        usleep(200_000)
        #expect(try HTTP.get(port: queued.port, "/").status == 503)
        #expect(try queued.metric("gatehouse_timeouts_total{kind=\"queue\"}") == 1)
    }

    @Test("a reset before any response byte is retried on another server; passive health skips the dead one")
    func failover() throws {
        let good = try DemoBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [1, good.port], backendExtra: "max_fails 2; fail_timeout 30s;"))
        for _ in 0..<20 {
            #expect(try HTTP.get(port: gh.port, "/").status == 200)
        }
        #expect(try gh.metric("gatehouse_retries_total{reason=\"failover\"}") >= 1)
        #expect(try gh.metric("gatehouse_upstream_server_up{backend=\"b\",server=\"127.0.0.1:1\"}") == 0)
        // After it is marked down, requests go straight to the good server: at most max_fails connect errors.
        #expect(try gh.metric("gatehouse_upstream_connect_errors_total{backend=\"b\",server=\"127.0.0.1:1\"}") <= 2)
    }

    @Test("a server that accepts and never answers beside a healthy one: idempotent requests get 200 from the healthy one, a POST gets 504")
    func silentServerFailover() throws {
        // A listening socket nobody accepts from: connects succeed, requests are taken, nothing answers.
        let (silent, silentPort) = try loopbackSocket(listening: true)
        defer { close(silent) }
        let good = try DemoBackend()
        // fail_timeout 0 keeps the silent server in rotation (a hung server is otherwise out at its
        // first head timeout: HungServerTests), so the requests keep meeting it.
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [silentPort, good.port], backendExtra: "fail_timeout 0;",
                                                                     top: "timeouts { upstream_header 300ms; }"))
        for i in 0..<6 {
            #expect(try HTTP.get(port: gh.port, "/get-\(i)").status == 200, "GET \(i)")
        }
        #expect(try gh.metric("gatehouse_retries_total{reason=\"failover\"}") >= 2)
        #expect(try gh.metric("gatehouse_timeouts_total{kind=\"upstream_header\"}") >= 2)
        #expect(try gh.metric("gatehouse_upstream_failures_total{backend=\"b\",server=\"127.0.0.1:\(silentPort)\"}") >= 2)
        // Not idempotent: a POST that went to the silent server is not sent again.
        var statuses: [Int] = []
        for _ in 0..<2 {
            statuses.append(try HTTP.request(port: gh.port, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi").status)
        }
        #expect(statuses.sorted() == [200, 504], "\(statuses)")
    }

    @Test("a backend that silently closes keep-alive connections never surfaces as a 502")
    func staleKeepAlive() throws {
        let be = try DemoBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port]))
        let c = try Conn(port: gh.port)
        for _ in 0..<300 {
            try c.send("GET /?drop=1 HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try c.readResponse().status == 200)
        }
        #expect(try gh.metric("gatehouse_requests_total{backend=\"b\",status_class=\"5xx\"}") == 0)
    }

    @Test("a pooled connection closed as it is reused: a GET is sent again on a fresh one, a POST gets 502")
    func staleRace() throws {
        // What a pooled connection looks like when the backend closes it just as we reuse it
        // (too late for epoll or a peek to tell): the request goes out, the connection ends with
        // no answer. Here the backend does exactly that to the second request on a connection.
        final class Seen: @unchecked Sendable {
            let lock = NSLock()
            var fds = Set<Int32>()
            func firstOn(_ fd: Int32) -> Bool { lock.lock(); defer { lock.unlock() }; return fds.insert(fd).inserted }
        }
        let seen = Seen()
        let be = try ScriptedBackend { fd, _ in
            guard seen.firstOn(fd) else { return .close }
            ScriptedBackend.write(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            return .keepOpen
        }
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port]))
        #expect(try HTTP.get(port: gh.port, "/first").status == 200)
        #expect(try HTTP.get(port: gh.port, "/again").status == 200)  // its pooled connection was closed: retried
        #expect(try gh.metric("gatehouse_retries_total{reason=\"stale_keepalive\"}") == 1)
        let post = try HTTP.request(port: gh.port, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
        #expect(post.status == 502)  // it may have been acted on: never sent twice
        #expect(try gh.metric("gatehouse_retries_total{reason=\"stale_keepalive\"}") == 1)
    }

    @Test("a reset mid-request from a fresh connection is a 502, and POST is not retried")
    func resetIsBadGateway() throws {
        let be = try DemoBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port]))
        #expect(try HTTP.get(port: gh.port, "/?reset=1").status == 502)
        let r = try HTTP.request(port: gh.port, "POST /?reset=1 HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
        #expect(r.status == 502)
    }

    @Test("--check validates; a bad config names file, line and directive and refuses to start")
    func configCheck() throws {
        let dir = NSTemporaryDirectory()
        let good = dir + "good-\(UUID().uuidString).conf"
        try GatehouseProcess.config(backends: [9]).write(toFile: good, atomically: true, encoding: .utf8)
        let ok = try sh("\(binDir)/gatehouse --check -c \(good)")
        #expect(ok.status == 0, "\(ok.output)")
        let bad = dir + "bad-\(UUID().uuidString).conf"
        try "backend b {\n  server 127.0.0.1:1;\n  max_idle lots;\n}\n".write(toFile: bad, atomically: true, encoding: .utf8)
        for cmd in ["--check -c \(bad)", "-c \(bad)"] {
            let r = try sh("\(binDir)/gatehouse \(cmd)")
            #expect(r.status != 0)
            #expect(r.output.contains("\(bad):3: directive \"max_idle\""), "\(r.output)")
        }
        let committed = try sh("cd \(binDir)/../../.. && \(binDir)/gatehouse --check -c proxy.conf")
        #expect(committed.status == 0, "\(committed.output)")
    }
}
