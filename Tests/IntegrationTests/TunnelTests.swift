import Foundation
import Glibc
import Testing

/// Upgrade tunnels with real WebSocket peers (Python's `websockets`, scripts/test installs it):
/// a client and an echo server talk through the proxy, which relays both ways once the server
/// answers 101, and relays any other answer as a normal response.
extension LoadTests {
    // Nested in the Load suite: its loads never share the machine with another load.
    @Suite("Upgrade tunnels", .serialized, .enabled(if: WS.available, Comment(rawValue: WS.missing)))
    struct TunnelTests {
        /// The proxy in front of a WebSocket echo server, with `top` directives.
        static func proxy(_ server: WS.Server, top: String = "", tls: Bool = false, bin: String = binDir) throws -> GatehouseProcess {
            if tls { return try GatehouseProcess(config: TLSFixture.config(backend: server.port, top: top), bin: bin) }
            return try GatehouseProcess(config: GatehouseProcess.config(backends: [server.port], top: top), bin: bin)
        }

        @Test("messages echo through the tunnel both ways, small and multi-megabyte; counted; nothing left open after")
        func echo() throws {
            let server = try WS.Server()
            let gh = try Self.proxy(server)
            let fdsBefore = try gh.openFDs()
            #expect(try WS.run("echo", "ws://127.0.0.1:\(gh.port)/", "50", "-100") == "echo ok 50")
            #expect(try WS.run("echo", "ws://127.0.0.1:\(gh.port)/", "3", "\(3 << 20)") == "echo ok 3")
            #expect(try WS.run("hello", "ws://127.0.0.1:\(gh.port)/hello") == "hello ok")  // bytes right behind the 101
            #expect(try eventually(3) { try gh.metric("gatehouse_tunnels_open") == 0 })
            #expect(try gh.metric("gatehouse_tunnels_total") == 3)
            #expect(try gh.metric("gatehouse_tunnel_bytes_total{direction=\"client_to_backend\"}") > Double(9 << 20))
            #expect(try gh.metric("gatehouse_tunnel_bytes_total{direction=\"backend_to_client\"}") > Double(9 << 20))
            #expect(try gh.metric("gatehouse_upstream_connections{backend=\"b\",server=\"127.0.0.1:\(server.port)\",state=\"active\"}") == 0)
            #expect(try eventually(3) { try gh.openFDs() == fdsBefore })
        }

        @Test("a backend refusing the upgrade: its answer goes to the client as a normal response, no tunnel")
        func refused() throws {
            let server = try WS.Server()
            let gh = try Self.proxy(server)
            #expect(try WS.run("refused", "ws://127.0.0.1:\(gh.port)/refuse") == "refused 403")
            #expect(try gh.metric("gatehouse_tunnels_total") == 0)
            #expect(try gh.metric("gatehouse_requests_total{backend=\"b\",status_class=\"4xx\"}") == 1)
        }

        @Test("an upgrade answered 200 is an ordinary exchange: the client connection carries on; h2c is never offered to the backend")
        func abandoned() throws {
            let backend = try DemoBackend()
            let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [backend.port]))
            let c = try Conn(port: gh.port)
            try c.send("GET /a?echo=1 HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n")
            let r1 = try c.readResponse()
            #expect(r1.status == 200)
            #expect(r1.text.contains("Upgrade: websocket\r\n") && r1.text.contains("Connection: upgrade\r\n"), "\(r1.text)")
            try c.send("GET /b?echo=1 HTTP/1.1\r\nHost: t\r\nConnection: upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n")
            let r2 = try c.readResponse()
            #expect(r2.status == 200)
            #expect(!r2.text.lowercased().contains("upgrade") && !r2.text.lowercased().contains("http2-settings"), "\(r2.text)")
            #expect(try gh.metric("gatehouse_tunnels_total") == 0)
        }

        @Test("a 101 nobody asked for is a bad response (502), never a tunnel")
        func unaskedSwitch() throws {
            let backend = try ScriptedBackend { fd, _ in
                let s = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\nraw"
                _ = s.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
                return .keepOpen
            }
            let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [backend.port]))
            let r = try HTTP.request(port: gh.port, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            #expect(r.status == 502)
            #expect(try gh.metric("gatehouse_tunnels_total") == 0)
        }

        @Test("a 101 naming a protocol the client did not offer is a bad response (502)")
        func wrongProtocol() throws {
            let backend = try ScriptedBackend { fd, _ in
                let s = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: something-else\r\nConnection: upgrade\r\n\r\n"
                _ = s.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
                return .keepOpen
            }
            let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [backend.port]))
            let r = try HTTP.request(port: gh.port, "GET / HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n")
            #expect(r.status == 502)
            #expect(try gh.metric("gatehouse_tunnels_total") == 0)
        }

        @Test("a client that stops reading gets client_send, not the tunnel's idle hour")
        func blockedClient() throws {
            let backend = try ScriptedBackend { fd, _ in
                let s = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: raw\r\nConnection: upgrade\r\n\r\n"
                _ = s.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
                let chunk = [UInt8](repeating: 0x61, count: 65536)
                while chunk.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) > 0 {}
                return .close
            }
            let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [backend.port], top: "timeouts { client_send 1s; }"))
            let c = try Conn(port: gh.port, smallReceiveBuffer: true)
            try c.send("GET / HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\nUpgrade: raw\r\n\r\n")
            #expect(try eventually(3) { try gh.metric("gatehouse_tunnels_open") == 1 })
            #expect(try eventually(6) { try gh.metric("gatehouse_tunnels_open") == 0 })
            #expect(try gh.metric("gatehouse_timeouts_total{kind=\"client_send\"}") == 1)
        }

        @Test("half-close: the client's end reaches the backend as EOF, and the backend's answer after it still reaches the client")
        func halfClose() throws {
            let backend = try ScriptedBackend { fd, _ in
                let s = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: raw\r\nConnection: upgrade\r\n\r\n"
                _ = s.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
                var got = 0
                var buf = [UInt8](repeating: 0, count: 4096)
                while true {
                    let n = recv(fd, &buf, buf.count, 0)
                    if n <= 0 { break }
                    got += n
                }
                let reply = "got \(got) bytes then EOF"
                _ = reply.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
                return .close
            }
            let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [backend.port]))
            let c = try Conn(port: gh.port)
            try c.send("GET / HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\nUpgrade: raw\r\n\r\n")
            let head = try c.readResponse()
            #expect(head.status == 101 && head.header("Upgrade") == "raw")
            try c.send(String(repeating: "z", count: 100_000))
            shutdown(c.fd, Int32(SHUT_WR))
            while try c.fill() {}
            #expect(String(decoding: c.pending, as: UTF8.self) == "got 100000 bytes then EOF")
            #expect(try eventually(3) { try gh.metric("gatehouse_tunnels_open") == 0 })
        }

        @Test("a client that vanishes mid-tunnel: both sides closed, descriptors and gauges back at baseline")
        func vanish() throws {
            let server = try WS.Server()
            let gh = try Self.proxy(server)
            let fdsBefore = try gh.openFDs()
            #expect(try WS.run("vanish", "ws://127.0.0.1:\(gh.port)/") == "vanishing")
            #expect(try eventually(5) { try gh.metric("gatehouse_tunnels_open") == 0 })
            #expect(try eventually(3) { try gh.openFDs() == fdsBefore })
            #expect(try gh.metric("gatehouse_client_connections{state=\"tunnel\"}") == 0)
        }

        @Test("timeouts.tunnel closes a silent tunnel; pings more often than it keep one open")
        func idleTimeout() throws {
            let server = try WS.Server()
            let gh = try Self.proxy(server, top: "timeouts { tunnel 1s; }")
            let silent = try WS.run("silent", "ws://127.0.0.1:\(gh.port)/", "10")
            let after = Double(silent.split(separator: " ").last ?? "") ?? -1
            #expect(silent.hasPrefix("closed after") && after >= 0.9 && after < 3, "\(silent)")
            #expect(try gh.metric("gatehouse_timeouts_total{kind=\"tunnel\"}") == 1)
            #expect(try WS.run("ping", "ws://127.0.0.1:\(gh.port)/", "0.3", "2.5") == "ping ok")
        }

        @Test("SIGTERM with a tunnel open: the drain timeout is its hard stop, then the process exits 0")
        func drain() throws {
            let server = try WS.Server()
            let gh = try Self.proxy(server, top: "timeouts { drain 1s; }")
            let client = try WS.Client("silent", "ws://127.0.0.1:\(gh.port)/", "30")
            _ = try client.child.waitForLine(containing: "connected")
            #expect(try eventually(3) { try gh.metric("gatehouse_tunnels_open") == 1 })
            let start = Date()
            gh.child.signal(SIGTERM)
            #expect(gh.child.waitExit(timeout: 10) == 0)
            let took = Date().timeIntervalSince(start)
            #expect(took >= 0.9 && took < 4, "exited \(took) s after SIGTERM")
            #expect(try client.child.waitForLine(containing: "closed after", timeout: 5).hasPrefix("closed after"))
        }

        @Test("wss: the tunnel runs over the client's TLS (echo, bytes behind the 101, a vanishing client)")
        func tls() throws {
            let server = try WS.Server()
            let gh = try Self.proxy(server, tls: true)
            #expect(try WS.run("echo", "wss://127.0.0.1:\(gh.port)/", "20", "\(1 << 20)") == "echo ok 20")
            #expect(try WS.run("hello", "wss://127.0.0.1:\(gh.port)/hello") == "hello ok")
            #expect(try WS.run("vanish", "wss://127.0.0.1:\(gh.port)/") == "vanishing")
            #expect(try eventually(5) { try gh.metric("gatehouse_tunnels_open") == 0 })
            #expect(try gh.metric("gatehouse_tunnels_total") == 3)
        }

        @Test("2,000 idle WebSockets on one thread: no task, no buffer per tunnel; memory per tunnel measured; all still echo")
        func manyIdle() throws {
            let server = try WS.Server()
            let gh = try Self.proxy(server, bin: releaseBinDir ?? binDir)
            let pid = gh.child.pid
            _ = try HTTP.request(port: gh.metricsPort, "GET /metrics HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n")
            let rssBefore = try residentBytes(pid)
            let tasksBefore = try gh.metric("gatehouse_tasks_live")
            let clients = try WS.Client("idle", "ws://127.0.0.1:\(gh.port)/", "2000", "3")
            _ = try clients.child.waitForLine(containing: "ready", timeout: 120)
            #expect(try gh.metric("gatehouse_tunnels_open") == 2000)
            let rss = try residentBytes(pid)
            #expect(try gh.metric("gatehouse_tasks_live") <= tasksBefore + 1)  // the scrape's own, at most
            #expect(try gh.metric("gatehouse_buffer_bytes{direction=\"client\"}") == 0)
            #expect(try gh.metric("gatehouse_buffer_bytes{direction=\"upstream\"}") == 0)
            #expect(try gh.metric("gatehouse_threads") == 1)
            let perTunnel = Double(rss - rssBefore) / 2000
            print("2,000 idle WebSocket tunnels (\(releaseBinDir == nil ? "debug" : "release") build): RSS \(rssBefore >> 10) KiB -> \(rss >> 10) KiB, \(Int(perTunnel)) bytes per tunnel")
            #expect(perTunnel < 8192, "\(perTunnel) bytes per idle tunnel")
            let done = try clients.child.waitForLine(containing: "idle ok", timeout: 120)
            #expect(done == "idle ok 2000")
            #expect(try eventually(10) { try gh.metric("gatehouse_tunnels_open") == 0 })
        }

        private func residentBytes(_ pid: Int32) throws -> Int {
            let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
            let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }!
            return Int(line.split(separator: " ")[1])! * 1024
        }
    }
}

/// The WebSocket peers of ws_peer.py.
enum WS {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path + "/Support/ws_peer.py"
    static let available = (try? sh("python3 -c 'import websockets.asyncio.client' 2>/dev/null").status) == 0
    static let missing = "the websockets package (13 or later) is not installed for python3 (pip install websockets; scripts/test installs it)"

    /// The echo server, on a free port.
    final class Server {
        let child: Child
        let port: UInt16
        init() throws {
            child = try Child("/usr/bin/env", ["python3", WS.script, "server"])
            port = boundPort(try child.waitForLine(containing: "ws listening on"))
        }
    }

    /// A client left running (read its lines).
    final class Client {
        let child: Child
        init(_ args: String...) throws { child = try Child("/usr/bin/env", ["python3", WS.script] + args) }
    }

    /// Runs a client to its end and returns its last line.
    static func run(_ args: String...) throws -> String {
        let r = try sh("timeout 120 python3 \(script) \(args.joined(separator: " ")) 2>&1")
        return r.output.split(separator: "\n").last.map(String.init) ?? "(exit \(r.status), no output)"
    }
}
