import Foundation
import Testing

/// Listeners share a port only when every process asks for it (`listen ... reuseport;`), and the
/// metrics listener never: a second Gatehouse on the same ports fails to start and says why.
@Suite("Listeners")
struct ListenerTests {
    static func config(backend: UInt16, listen: String, metrics: String) -> String {
        """
        log_level warning;
        metrics \(metrics);
        backend b { server 127.0.0.1:\(backend); }
        server {
            listen \(listen);
            proxy_pass b;
        }
        """
    }

    /// Runs gatehouse with `config` for at most 5 s; its exit status (124 if it was still running)
    /// and everything it printed.
    static func runBriefly(_ config: String) throws -> (status: Int32, output: String) {
        let path = NSTemporaryDirectory() + "gatehouse-listen-\(UUID().uuidString).conf"
        try config.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try sh("timeout 5 \(binDir)/gatehouse -c \(path) 2>&1")
    }

    @Test("a second gatehouse on the same port exits 1 naming the address (EADDRINUSE); the first carries on")
    func secondInstanceRefused() throws {
        let be = try DemoBackend()
        let first = try GatehouseProcess(config: Self.config(backend: be.port, listen: "127.0.0.1:0", metrics: "127.0.0.1:0"))
        for listen in ["127.0.0.1:\(first.port)", "127.0.0.1:\(first.port) reuseport"] {
            let r = try Self.runBriefly(Self.config(backend: be.port, listen: listen, metrics: "127.0.0.1:0"))
            #expect(r.status == 1, "listen \(listen): exit \(r.status): \(r.output)")
            #expect(r.output.contains("gatehouse: cannot listen on 127.0.0.1:\(first.port): address already in use (EADDRINUSE)"), "\(r.output)")
        }
        #expect(try HTTP.get(port: first.port, "/").status == 200)
    }

    @Test("with reuseport on both, both start and share the port's connections")
    func reusePortShares() throws {
        let be = try DemoBackend()
        let a = try GatehouseProcess(config: Self.config(backend: be.port, listen: "127.0.0.1:0 reuseport", metrics: "127.0.0.1:0"))
        let b = try GatehouseProcess(config: Self.config(backend: be.port, listen: "127.0.0.1:\(a.port) reuseport", metrics: "127.0.0.1:0"))
        #expect(b.port == a.port)
        let n = 40
        for _ in 0..<n {
            #expect(try HTTP.get(port: a.port, "/").status == 200)
        }
        let atA = try a.metric("gatehouse_accepted_connections_total")
        let atB = try b.metric("gatehouse_accepted_connections_total")
        #expect(atA + atB == Double(n) && atA > 0 && atB > 0, "accepted: \(atA) and \(atB)")
    }

    @Test("the metrics port clashes always, even between processes sharing the proxy port")
    func metricsNeverShared() throws {
        let be = try DemoBackend()
        let a = try GatehouseProcess(config: Self.config(backend: be.port, listen: "127.0.0.1:0 reuseport", metrics: "127.0.0.1:0"))
        let r = try Self.runBriefly(Self.config(backend: be.port, listen: "127.0.0.1:\(a.port) reuseport", metrics: "127.0.0.1:\(a.metricsPort)"))
        #expect(r.status == 1, "exit \(r.status): \(r.output)")
        #expect(r.output.contains("gatehouse: cannot listen on 127.0.0.1:\(a.metricsPort) (metrics): address already in use (EADDRINUSE)"), "\(r.output)")
        #expect(try HTTP.get(port: a.metricsPort, "/health").status == 200)
    }

    @Test("two server blocks on one address: --check fails naming both lines")
    func duplicateListenCheck() throws {
        let path = NSTemporaryDirectory() + "gatehouse-dup-\(UUID().uuidString).conf"
        try """
        backend b { server 127.0.0.1:1; }
        server { listen 127.0.0.1:8080; proxy_pass b; }
        server { listen 127.0.0.1:8080; proxy_pass b; }
        """.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = try sh("timeout 10 \(binDir)/gatehouse --check -c \(path) 2>&1")
        #expect(r.status == 1)
        #expect(r.output.contains("\(path):3: directive \"listen\": 127.0.0.1:8080 is also bound at \(path):2"), "\(r.output)")
    }

    @Test("an overflowing duration is a --check error, not a crash")
    func overflowCheck() throws {
        let path = NSTemporaryDirectory() + "gatehouse-overflow-\(UUID().uuidString).conf"
        try "backend b {\n    server 127.0.0.1:1;\n    idle_timeout 99999999999h;\n}\nserver { listen 127.0.0.1:0; proxy_pass b; }\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = try sh("timeout 10 \(binDir)/gatehouse --check -c \(path) 2>&1")
        #expect(r.status == 1)
        #expect(r.output.contains("\(path):3: directive \"idle_timeout\": duration \"99999999999h\" is too long"), "\(r.output)")
    }
}
