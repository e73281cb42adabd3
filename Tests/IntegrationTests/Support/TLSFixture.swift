import Foundation

/// Certificates made with the real openssl command for the TLS tests, once per test run:
/// an ECDSA and an RSA default certificate (CN localhost), an ECDSA one for a.test and *.a.test,
/// a CA with a client certificate it signed (CN alice), and a self-signed client certificate.
enum TLSFixture {
    static let dir: String = {
        let d = NSTemporaryDirectory() + "gatehouse-tls-\(UUID().uuidString)/"
        try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        let ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
        let script = """
        set -e
        cd \(d)
        openssl req -x509 \(ec) -keyout ec.key -out ec.pem -days 30 -subj /CN=localhost
        openssl req -x509 -newkey rsa:2048 -nodes -keyout rsa.key -out rsa.pem -days 30 -subj /CN=localhost
        openssl req -x509 \(ec) -keyout a.key -out a.pem -days 30 -subj /CN=a.test
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 30 -subj "/CN=Gatehouse Test CA"
        openssl req \(ec) -keyout alice.key -out alice.csr -subj "/CN=alice/O=Gatehouse Tests"
        openssl x509 -req -in alice.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out alice.pem -days 30
        openssl req -x509 \(ec) -keyout mallory.key -out mallory.pem -days 30 -subj /CN=mallory
        """
        let r = try! sh(script + " 2>&1")
        precondition(r.status == 0, "making test certificates failed: \(r.output)")
        return d
    }()

    /// A Gatehouse config whose one listener speaks TLS with the fixture's certificates.
    static func config(backend: UInt16, tlsExtra: String = "", top: String = "") -> String {
        """
        log_level warning;
        metrics 127.0.0.1:0;
        \(top)
        backend b { server 127.0.0.1:\(backend); }
        server {
            listen 127.0.0.1:0;
            proxy_pass b;
            tls {
                certificate \(dir)ec.pem \(dir)ec.key;
                certificate \(dir)rsa.pem \(dir)rsa.key;
                certificate \(dir)a.pem \(dir)a.key a.test *.a.test;
                \(tlsExtra)
            }
        }
        """
    }

    /// The Python many-clients helper beside this file.
    static let clients = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path + "/tls_clients.py"
}

/// openssl s_client against 127.0.0.1:port with `args`, feeding `input` (then a pause, so
/// post-handshake messages such as TLS 1.3 tickets arrive); returns everything it printed.
func sClient(_ port: UInt16, _ args: String, input: String = "", pause: Double = 0.3) throws -> String {
    let feed = input.isEmpty ? "sleep \(pause)" : "printf '\(input)'; sleep \(pause)"
    return try sh("(\(feed)) | timeout 20 openssl s_client -connect 127.0.0.1:\(port) \(args) 2>&1").output
}
