import Config
import Testing

/// `listen` addresses: `reuseport` only where it is written, and no address bound twice.
@Suite("Configuration listen")
struct ListenTests {
    static func load(_ text: String) throws(ConfigError) -> Configuration {
        try ConfigLoader.load(text: text, file: "dup.conf")
    }

    @Test("reuseport is off unless the listen says it")
    func reusePortOption() throws {
        let c = try Self.load("""
        backend b { server 1.2.3.4:5; }
        server { listen 127.0.0.1:8080 reuseport; listen 127.0.0.1:8081; proxy_pass b; }
        """)
        #expect(c.servers[0].listen.map(\.address) == [HostPort(host: "127.0.0.1", port: 8080), HostPort(host: "127.0.0.1", port: 8081)])
        #expect(c.servers[0].listen.map(\.reusePort) == [true, false])
        #expect(Configuration.quick(listen: [HostPort(host: "127.0.0.1", port: 1)], backends: [], metrics: nil).servers[0].listen[0].reusePort == false)
    }

    static let bad: [(text: String, line: Int, directive: String, message: String)] = [
        // Two server blocks on one address: both lines named.
        ("backend b { server 1.2.3.4:5; }\nserver {\n listen 127.0.0.1:8080;\n proxy_pass b;\n}\nserver {\n listen 127.0.0.1:8080;\n proxy_pass b;\n}\n",
         7, "listen", "127.0.0.1:8080 is also bound at dup.conf:3"),
        // reuseport on both does not make it right inside one process.
        ("backend b { server 1.2.3.4:5; }\nserver { listen 127.0.0.1:8080 reuseport; proxy_pass b; }\nserver { listen 127.0.0.1:8080 reuseport; proxy_pass b; }\n",
         3, "listen", "127.0.0.1:8080 is also bound at dup.conf:2"),
        // The same block twice, and spellings of one address.
        ("backend b { server 1.2.3.4:5; }\nserver {\n listen *:80;\n listen 0.0.0.0:80;\n proxy_pass b;\n}\n", 4, "listen", "0.0.0.0:80 is also bound at dup.conf:3"),
        // A wildcard covers every address of its port.
        ("backend b { server 1.2.3.4:5; }\nserver { listen 0.0.0.0:80; proxy_pass b; }\nserver { listen 10.0.0.1:80; proxy_pass b; }\n", 3, "listen", "also bound at dup.conf:2"),
        ("backend b { server 1.2.3.4:5; }\nserver { listen [::1]:80; proxy_pass b; }\nserver { listen [::]:80; proxy_pass b; }\n", 3, "listen", "also bound at dup.conf:2"),
        // The metrics listener never shares a proxy address.
        ("metrics 127.0.0.1:9101;\nbackend b { server 1.2.3.4:5; }\nserver { listen 127.0.0.1:9101; proxy_pass b; }\n", 3, "listen", "also bound at dup.conf:1"),
        ("backend b { server 1.2.3.4:5; }\nserver { listen 127.0.0.1:9101; proxy_pass b; }\n", 2, "listen", "the metrics listener (default 127.0.0.1:9101)"),
        // Options.
        ("backend b { server 1.2.3.4:5; }\nserver { listen 127.0.0.1:80 reuse_port; proxy_pass b; }\n", 2, "listen", "unknown option \"reuse_port\""),
        ("backend b { server 1.2.3.4:5; }\nserver { listen 127.0.0.1:80 reuseport reuseport; proxy_pass b; }\n", 2, "listen", "takes an address"),
        ("backend b { server 1.2.3.4:5; }\nserver { listen; proxy_pass b; }\n", 2, "listen", "takes an address"),
    ]

    @Test("an address bound twice is an error naming both lines", arguments: bad)
    func errors(_ c: (text: String, line: Int, directive: String, message: String)) {
        expectConfigError(c.text, file: "dup.conf", line: c.line, directive: c.directive, message: c.message)
    }

    @Test("port 0 may repeat (each picks its own port), and different ports or hosts do not clash")
    func noClash() throws {
        let c = try Self.load("""
        metrics 127.0.0.1:0;
        backend b { server 1.2.3.4:5; }
        server { listen 127.0.0.1:0; listen 127.0.0.1:0; listen 127.0.0.2:80; proxy_pass b; }
        server { listen 127.0.0.1:80; listen [::1]:80; proxy_pass b; }
        """)
        #expect(c.servers.flatMap(\.listen).count == 5)
        _ = try Self.load("metrics off;\nbackend b { server 1.2.3.4:5; }\nserver { listen 127.0.0.1:9101; proxy_pass b; }\n")
    }
}
