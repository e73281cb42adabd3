import Foundation
import Glibc
import Testing

/// HTTP/2 to clients with real clients: curl (ALPN h2 over TLS, prior knowledge on cleartext),
/// h2load, and Python's `h2` for the protocol's edge cases. Every stream is forwarded as an
/// HTTP/1.1 request over the usual pool, to the demo backend.
extension LoadTests {
    // Nested in the Load suite: its loads never share the machine with another load.
    @Suite("HTTP/2", .serialized, .enabled(if: H2.available, Comment(rawValue: H2.missing)))
    struct HTTP2Tests {
        /// The proxy with `http2 on` on a cleartext and a TLS listener in front of `backend`.
        static func proxy(_ backend: UInt16, top: String = "", bin: String = binDir) throws -> (GatehouseProcess, tls: UInt16) {
            let d = TLSFixture.dir
            let gh = try GatehouseProcess(config: """
                log_level warning;
                metrics 127.0.0.1:0;
                \(top)
                backend b { server 127.0.0.1:\(backend); }
                server { listen 127.0.0.1:0; proxy_pass b; http2 on; }
                server { listen 127.0.0.1:0; proxy_pass b; http2 on; tls { certificate \(d)ec.pem \(d)ec.key; } }
                """, bin: bin)
            return (gh, boundPort(try gh.child.waitForLine(containing: "proxy (tls) listening")))
        }

        @Test("curl: h2 by ALPN over TLS, h2c by prior knowledge, HTTP/1.1 still on both; fields translated both ways")
        func curl() throws {
            let backend = try DemoBackend()
            let (gh, tls) = try Self.proxy(backend.port)
            let h2c = try sh("curl -s --http2-prior-knowledge 'http://127.0.0.1:\(gh.port)/x?echo=1' -H 'Cookie: a=1' -H 'Cookie: b=2' -H 'X-Forwarded-For: 9.9.9.9' -w '\\n%{http_version} %{http_code}'").output
            #expect(h2c.hasSuffix("\n2 200"), "\(h2c)")
            #expect(h2c.contains("GET /x?echo=1 HTTP/1.1\r\nHost: 127.0.0.1:\(gh.port)\r\n"), "\(h2c)")
            #expect(h2c.contains("Cookie: a=1; b=2\r\n") && h2c.contains("X-Forwarded-For: 9.9.9.9, 127.0.0.1\r\n") && h2c.contains("X-Forwarded-Proto: http\r\n"), "\(h2c)")
            let h2 = try sh("curl -sk --http2 'https://127.0.0.1:\(tls)/x?echo=1' -w '\\n%{http_version} %{http_code}'").output
            #expect(h2.hasSuffix("\n2 200") && h2.contains("X-Forwarded-Proto: https\r\n"), "\(h2)")
            // The response: connection-specific fields gone, names lowercase, a chunked body de-chunked.
            let head = try sh("curl -sk --http2 -D - -o /dev/null 'https://127.0.0.1:\(tls)/x?size=1000&chunked=1'").output
            #expect(head.hasPrefix("HTTP/2 200") && !head.lowercased().contains("transfer-encoding") && !head.contains("Server:"), "\(head)")
            let size = try sh("curl -sk --http2 -o /dev/null -w '%{size_download}' 'https://127.0.0.1:\(tls)/x?size=1000000&chunked=1'").output
            #expect(size == "1000000")
            let h1 = try sh("curl -s 'http://127.0.0.1:\(gh.port)/x' -w ' %{http_version} %{http_code}'").output
            #expect(h1.hasSuffix(" 1.1 200"))
            let post = try sh("head -c 300000 /dev/urandom > /tmp/gh-h2-body && curl -s --http2-prior-knowledge 'http://127.0.0.1:\(gh.port)/x?echo=1' --data-binary @/tmp/gh-h2-body -o /dev/null -w '%{http_code} %{size_upload}'").output
            #expect(post == "200 300000")
            #expect(try gh.metric("gatehouse_http2_connections_total") == 5)  // curl runs over HTTP/2: five
            #expect(try gh.metric("gatehouse_requests_by_protocol_total{protocol=\"HTTP/2\"}") == 5)
            #expect(try gh.metric("gatehouse_requests_by_protocol_total{protocol=\"HTTP/1.1\"}") == 1)
            #expect(try eventually(3) { try gh.metric("gatehouse_http2_streams_open") == 0 && gh.metric("gatehouse_http2_connections_open") == 0 })
        }

        @Test("access log: one line per stream, protocol HTTP/2.0, in both formats; refused streams logged too", arguments: ["text", "json"])
        func accessLog(_ format: String) throws {
            let backend = try DemoBackend()
            let log = LogFile()
            let (gh, tls) = try Self.proxy(backend.port, top: "access_log \(log.path) \(format);")
            _ = try sh("curl -sk --http2 'https://127.0.0.1:\(tls)/a?size=100' 'https://127.0.0.1:\(tls)/b?status=404' -o /dev/null -o /dev/null")
            #expect(try H2.run("bigheaders", gh.port, "20000") == "status 431")
            let lines = try AccessLogTests.lines(log, 3, json: format == "json")
            let byTarget = Dictionary(lines.map { ($0.target ?? "-", $0) }, uniquingKeysWith: { a, _ in a })
            #expect(byTarget["/a?size=100"]?.proto == "HTTP/2.0" && byTarget["/a?size=100"]?.status == 200 && byTarget["/a?size=100"]?.bytes == 100)
            #expect(byTarget["/a?size=100"]?.tls != nil && byTarget["/a?size=100"]?.upstream == "127.0.0.1:\(backend.port)")
            #expect(byTarget["/b?status=404"]?.status == 404)
            #expect(lines.contains { $0.method == nil && $0.status == 431 })
        }

        @Test("the client-certificate subject header is only ever the proxy's over HTTP/2 too (TLS and h2c); a lookalike is refused")
        func clientSubject() throws {
            let backend = try DemoBackend()
            let d = TLSFixture.dir
            let gh = try GatehouseProcess(config: TLSFixture.config(backend: backend.port, tlsExtra: "verify_client on; client_ca \(d)ca.pem;")
                .replacingOccurrences(of: "proxy_pass b;\n    tls {", with: "proxy_pass b;\n    http2 on;\n    tls {")
                + "\nserver {\n    listen 127.0.0.1:0;\n    proxy_pass b;\n    http2 on;\n}\n")
            let plain = boundPort(try gh.child.waitForLine(containing: "proxy listening on"))
            let url = "https://127.0.0.1:\(gh.port)/x?echo=1"
            let ok = try sh("curl -sk --http2 --cert \(d)alice.pem --key \(d)alice.key -H 'X-Client-Subject: CN=forged' -w '\\n%{http_version}' '\(url)'").output
            #expect(ok.hasSuffix("\n2") && ok.lowercased().contains("x-client-subject: o=gatehouse tests,cn=alice") && !ok.contains("forged"), "\(ok)")
            let lookalike = try sh("curl -sk --http2 -o /dev/null -w '%{http_code}' --cert \(d)alice.pem --key \(d)alice.key -H 'X_Client_Subject: CN=forged' '\(url)'").output
            #expect(lookalike == "400")
            let h2c = try sh("curl -s --http2-prior-knowledge -H 'X-Client-Subject: CN=admin' 'http://127.0.0.1:\(plain)/x?echo=1'").output
            #expect(h2c.contains("GET /x?echo=1 HTTP/1.1") && !h2c.lowercased().contains("cn=admin"), "\(h2c)")
        }

        @Test("h2load: 10 connections x 100 concurrent streams through a 50 ms backend, every request answered")
        func h2load() throws {
            let backend = try DemoBackend()
            let (gh, tls) = try Self.proxy(backend.port)
            for url in ["https://127.0.0.1:\(tls)/x?delay_ms=50", "http://127.0.0.1:\(gh.port)/x?delay_ms=50"] {
                let out = try sh("timeout 60 h2load -n 5000 -c 10 -m 100 '\(url)' 2>&1").output
                #expect(out.contains("requests: 5000 total, 5000 started, 5000 done, 5000 succeeded, 0 failed, 0 errored, 0 timeout"), "\(out)")
                #expect(out.contains("status codes: 5000 2xx"), "\(out)")
            }
            #expect(try gh.metric("gatehouse_threads") == 1)
            #expect(try eventually(3) { try gh.metric("gatehouse_http2_streams_open") == 0 && gh.metric("gatehouse_requests_in_flight") == 0 })
        }

        @Test("SIGTERM: the connection gets a GOAWAY, its open stream (1.5 s) still gets its 200, then the process exits 0")
        func drain() throws {
            let backend = try DemoBackend()
            let (gh, tls) = try Self.proxy(backend.port)
            let curl = Process()
            curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
            curl.arguments = ["-sk", "--http2", "-o", "/dev/null", "-w", "%{http_code}", "https://127.0.0.1:\(tls)/x?delay_ms=1500"]
            let out = Pipe()
            curl.standardOutput = out
            try curl.run()
            #expect(try eventually(3) { try gh.metric("gatehouse_http2_streams_open") == 1 })
            gh.child.signal(SIGTERM)
            curl.waitUntilExit()
            #expect(String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) == "200")
            #expect(gh.child.waitExit(timeout: 10) == 0)
        }

        @Test("a stream on a 2 s backend does not delay another on a 0 ms backend of the same connection")
        func concurrentStreams() throws {
            let backend = try DemoBackend()
            let (gh, _) = try Self.proxy(backend.port)
            let out = try H2.run("mixed", gh.port, "/slow?delay_ms=2000", "/fast")
            let parts = out.split(separator: " ")
            let fast = Double(parts[1]) ?? -1, slow = Double(parts[3]) ?? -1
            #expect(fast >= 0 && fast < 0.5 && slow >= 1.9, "\(out)")
        }

        @Test("rapid reset (thousands of HEADERS + RST_STREAM) gets a GOAWAY while another client is served; no request reaches the backend")
        func rapidReset() throws {
            let backend = try DemoBackend()
            let (gh, _) = try Self.proxy(backend.port)
            let before = try backend.stats()["requests"] ?? 0
            let attack = try H2.run("rapidreset", gh.port, "5000")
            #expect(attack.hasPrefix("goaway"), "\(attack)")
            let other = try sh("curl -s --http2-prior-knowledge http://127.0.0.1:\(gh.port)/x -o /dev/null -w '%{http_code}'").output
            #expect(other == "200")
            #expect((try backend.stats()["requests"] ?? 0) - before < 100, "reset streams went to the backend")
            #expect(try eventually(3) { try gh.metric("gatehouse_http2_streams_open") == 0 && gh.metric("gatehouse_requests_in_flight") == 0 })
        }

        @Test("a CONTINUATION flood is cut off with a GOAWAY")
        func continuationFlood() throws {
            let backend = try DemoBackend()
            let (gh, _) = try Self.proxy(backend.port)
            let out = try H2.run("continuation", gh.port, "10000")
            #expect(out.hasPrefix("goaway") || out == "closed", "\(out)")
            #expect(try eventually(3) { try gh.metric("gatehouse_http2_connections_open") == 0 })
        }

        @Test("a field list over 16 KiB is answered 431; under it, 200")
        func bigHeaders() throws {
            let backend = try DemoBackend()
            let (gh, _) = try Self.proxy(backend.port)
            #expect(try H2.run("bigheaders", gh.port, "20000") == "status 431")
            #expect(try H2.run("bigheaders", gh.port, "8000") == "status 200")
        }

        @Test("more DATA than content-length resets that stream (PROTOCOL_ERROR); the connection serves the next")
        func contentLength() throws {
            let backend = try DemoBackend()
            let (gh, _) = try Self.proxy(backend.port)
            #expect(try H2.run("clmismatch", gh.port) == "first reset 1; then status 200")
        }

        @Test("request bodies no backend takes (answered 502 first) still give the connection window back: 200 x 60 KB on one connection")
        func discardedBodies() throws {
            let dead = try ReloadTests.freePort()  // nothing listens: every stream is answered 502 at once
            let (gh, _) = try Self.proxy(dead)
            let out = try H2.run("discard", gh.port, "200")
            #expect(out.hasPrefix("sent 200"), "\(out)")
            #expect(try eventually(3) { try gh.metric("gatehouse_http2_streams_open") == 0 })
        }

        @Test("pseudo-header and field violations are stream errors, never forwarded", arguments: ["nopath", "uppercase", "connection", "twomethods", "te"])
        func malformed(_ c: String) throws {
            let backend = try DemoBackend()
            let (gh, _) = try Self.proxy(backend.port)
            let out = try H2.run("pseudo", gh.port, c)
            #expect(out == "reset 1" || out.hasPrefix("goaway 1"), "\(c): \(out)")
            #expect((try backend.stats()["requests"] ?? 0) == 0)
        }

        @Test("a client that never opens its window holds a bounded queue; other connections go on; RSS bounded for 200 MB down and up")
        func flowControl() throws {
            let backend = try DemoBackend(bin: releaseBinDir ?? binDir)
            let (gh, tls) = try Self.proxy(backend.port, bin: releaseBinDir ?? binDir)
            let stalled = try H2.run("stall", gh.port, "/x?size=50000000")
            let got = Int(stalled.split(separator: " ").last ?? "") ?? -1
            #expect(got > 0 && got <= 65535 + 16384, "\(stalled)")
            let rssBefore = try residentKiB(gh.child.pid)
            let down = try sh("curl -sk --http2 -o /dev/null -w '%{http_code} %{size_download}' 'https://127.0.0.1:\(tls)/x?size=200000000'").output
            #expect(down == "200 200000000")
            let up = try sh("head -c 200000000 /dev/zero | curl -s --http2-prior-knowledge -T - 'http://127.0.0.1:\(gh.port)/x' -o /dev/null -w '%{http_code} %{size_upload}'").output
            #expect(up == "200 200000000", "\(up)")
            let grew = try residentKiB(gh.child.pid) - rssBefore
            print("HTTP/2 200 MB down and up: RSS grew \(grew) KiB")
            #expect(grew < 32 * 1024, "RSS grew \(grew) KiB")
        }

        private func residentKiB(_ pid: Int32) throws -> Int {
            let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
            return Int(status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }!.split(separator: " ")[1])!
        }
    }
}

/// The misbehaving clients of h2_peer.py, and what HTTP/2 tests need.
enum H2 {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path + "/Support/h2_peer.py"
    static let available = (try? sh("python3 -c 'import h2, hyperframe' 2>/dev/null && command -v h2load >/dev/null && curl -V | grep -q HTTP2").status) == 0
    static let missing = "HTTP/2 tools missing: python3 h2 (pip install h2), h2load (Debian nghttp2-client) or curl with HTTP/2; scripts/test installs them"

    static func run(_ mode: String, _ port: UInt16, _ args: String...) throws -> String {
        let r = try sh("timeout 60 python3 \(script) \(mode) \(port) \(args.map { "'\($0)'" }.joined(separator: " ")) 2>&1")
        return r.output.split(separator: "\n").last.map(String.init) ?? "(exit \(r.status), no output)"
    }
}

