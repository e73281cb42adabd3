import Foundation
import Testing

/// TLS from the proxy to a backend, against `openssl s_server -www` (real OpenSSL, one connection
/// at a time, HTTP/1.0 answers ending at close).
@Suite("TLS to backends", .serialized)
struct UpstreamTLSTests {
    /// s_server with the a.test certificate; with `fatalSNI`, a client naming anything else is refused.
    final class SServer {
        let child: Child
        let port: UInt16

        init(fatalSNI: Bool = false) throws {
            let probe = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(probe, $0, len) } }
            _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(probe, $0, &len) } }
            port = UInt16(bigEndian: addr.sin_port)
            close(probe)
            let d = TLSFixture.dir
            var args = ["s_server", "-accept", "127.0.0.1:\(port)", "-cert", d + "a.pem", "-key", d + "a.key", "-www", "-naccept", "100"]
            if fatalSNI { args += ["-servername", "a.test", "-cert2", d + "ec.pem", "-key2", d + "ec.key", "-servername_fatal"] }
            child = try Child("/usr/bin/openssl", args)
            _ = try child.waitForLine(containing: "ACCEPT")
        }
    }

    static func config(_ port: UInt16, _ tls: String) -> String {
        """
        log_level warning;
        metrics 127.0.0.1:0;
        backend b {
            server 127.0.0.1:\(port);
            retry off;
            \(tls)
        }
        server { listen 127.0.0.1:0; proxy_pass b; }
        """
    }

    @Test("the backend's certificate is verified against the CA and the name; a mismatch is a 502")
    func verified() throws {
        let up = try SServer()
        let ok = try GatehouseProcess(config: Self.config(up.port, "tls on; tls_ca \(TLSFixture.dir)a.pem; tls_server_name a.test;"))
        let r = try HTTP.get(port: ok.port, "/")
        #expect(r.status == 200, "\(r.status) \(r.text)")
        #expect(r.text.contains("TLSv1.3"), "s_server's status page names the protocol: \(r.text)")
        let wrongName = try GatehouseProcess(config: Self.config(up.port, "tls on; tls_ca \(TLSFixture.dir)a.pem; tls_server_name b.test;"))
        #expect(try HTTP.get(port: wrongName.port, "/").status == 502)
        let wrongCA = try GatehouseProcess(config: Self.config(up.port, "tls on; tls_ca \(TLSFixture.dir)ca.pem; tls_server_name a.test;"))
        #expect(try HTTP.get(port: wrongCA.port, "/").status == 502)
        #expect(try wrongCA.metric("gatehouse_upstream_connect_errors_total") >= 1)
    }

    @Test("SNI names the backend: the right name gets through, another is refused by the server")
    func sni() throws {
        let up = try SServer(fatalSNI: true)
        let right = try GatehouseProcess(config: Self.config(up.port, "tls on; tls_verify off; tls_server_name a.test;"))
        #expect(try HTTP.get(port: right.port, "/").status == 200)
        let wrong = try GatehouseProcess(config: Self.config(up.port, "tls on; tls_verify off; tls_server_name other.test;"))
        #expect(try HTTP.get(port: wrong.port, "/").status == 502)
    }

    @Test("tls options need tls on, and are checked with the backend block's line")
    func config() throws {
        let conf = NSTemporaryDirectory() + "gh-uptls-\(UUID().uuidString).conf"
        try "backend b {\n    server 127.0.0.1:1;\n    tls_verify off;\n}\nserver { listen 127.0.0.1:0; proxy_pass b; }\n"
            .write(toFile: conf, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: conf) }
        let r = try sh("\(binDir)/gatehouse --check -c \(conf)")
        #expect(r.status == 1)
        #expect(r.output.contains("\(conf):3: directive \"tls_verify\": needs \"tls on;\""), "\(r.output)")
    }
}
