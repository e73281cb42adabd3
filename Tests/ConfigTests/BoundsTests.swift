import Config
import Testing

/// Numbers in proxy.conf that overflow or make no sense are config errors at their line, never a
/// crash of `--check` or of the proxy.
@Suite("Configuration bounds")
struct BoundsTests {
    static func load(_ text: String) throws(ConfigError) -> Configuration {
        try ConfigLoader.load(text: text, file: "bad.conf")
    }

    /// A minimal valid config with `top` at the top and `backend` inside the backend block, from line 1.
    static func wrap(top: String = "", backend: String = "") -> String {
        "\(top)\nbackend b {\n server 1.2.3.4:5;\n \(backend)\n}\nserver { listen 1.2.3.4:80; proxy_pass b; }\n"
    }

    static let bad: [(text: String, line: Int, directive: String, message: String)] = [
        // Durations: digits beyond UInt64, and values whose nanoseconds overflow.
        (wrap(backend: "idle_timeout 99999999999999999999h;"), 4, "idle_timeout", "too long"),
        (wrap(backend: "idle_timeout 99999999999h;"), 4, "idle_timeout", "too long"),
        (wrap(backend: "queue_timeout 9999999999999999999ms;"), 4, "queue_timeout", "too long"),
        (wrap(backend: "fail_timeout 5124095576m;"), 4, "fail_timeout", "too long"),
        (wrap(top: "timeouts { drain 18446744073; }"), 1, "drain", "too long"),
        (wrap(top: "timeouts { upstream_read 9000h; }"), 1, "upstream_read", "too long"),
        (wrap(top: "park_after 99999999999h;"), 1, "park_after", "too long"),
        (wrap(top: "timeouts { keepalive -5s; }"), 1, "keepalive", "invalid duration"),
        (wrap(top: "timeouts { keepalive 5 s; }"), 1, "keepalive", "exactly one argument"),
        (wrap(top: "timeouts { keepalive s; }"), 1, "keepalive", "invalid duration"),
        // Sizes: overflow of the multiplier, digits beyond Int, negatives, absurd zeros.
        (wrap(top: "buffer_size 9999999999999999g;"), 1, "buffer_size", "too large"),
        (wrap(top: "buffer_size 99999999999999999999;"), 1, "buffer_size", "too large"),
        (wrap(top: "limits { max_body_bytes 9999999999999999g; }"), 1, "max_body_bytes", "too large"),
        (wrap(top: "limits { max_body_bytes 2000g; }"), 1, "max_body_bytes", "too large"),
        (wrap(top: "limits { max_body_bytes -1; }"), 1, "max_body_bytes", "invalid size"),
        (wrap(top: "limits { max_uri_bytes 0; }"), 1, "max_uri_bytes", "greater than 0"),
        (wrap(top: "limits { max_header_bytes 0; }"), 1, "max_header_bytes", "greater than 0"),
        (wrap(top: "limits { max_header_bytes 9999999999999999999k; }"), 1, "max_header_bytes", "too large"),
        // Counts: digits beyond Int, negatives, zero where it matters.
        (wrap(top: "buffer_cache 99999999999999999999;"), 1, "buffer_cache", "invalid number"),
        (wrap(top: "buffer_cache -1;"), 1, "buffer_cache", "invalid number"),
        (wrap(top: "limits { max_connections 0; }"), 1, "max_connections", "invalid number"),
        (wrap(backend: "max_requests -3;"), 4, "max_requests", "invalid number"),
        (wrap(backend: "max_fails 0;"), 4, "max_fails", "invalid number"),
        // A server on port 0 cannot be connected to.
        ("backend b {\n server 1.2.3.4:0;\n}\nserver { listen 1.2.3.4:80; proxy_pass b; }\n", 2, "server", "port 0"),
        ("backend b {\n server 1.2.3.4:65536;\n}\nserver { listen 1.2.3.4:80; proxy_pass b; }\n", 2, "server", "invalid address"),
    ]

    @Test("overflowing, negative and absurd numbers are errors at their line", arguments: bad)
    func errors(_ c: (text: String, line: Int, directive: String, message: String)) {
        expectConfigError(c.text, file: "bad.conf", line: c.line, directive: c.directive, message: c.message)
    }

    @Test("TLS durations that overflow are errors too")
    func tlsDurations() {
        for directive in ["session_timeout 99999999999h;", "ticket_key_rotation 99999999999h;", "handshake_timeout 99999999999h;"] {
            let text = "backend b { server 1.2.3.4:5; }\nserver {\n listen 1.2.3.4:443;\n proxy_pass b;\n tls {\n  \(directive)\n }\n}\n"
            do {
                _ = try Self.load(text)
                Issue.record("accepted: \(directive)")
            } catch {
                #expect(error.line == 6 && error.message.contains("too long"), "\(error)")
            }
        }
    }

    @Test("the largest values allowed load and mean what they say")
    func largestAllowed() throws {
        let c = try Self.load(Self.wrap(top: "buffer_size 1m;\ntimeouts { drain 8760h; }\nlimits { max_body_bytes 1024g; }", backend: "idle_timeout 525600m;"))
        #expect(c.timeouts.drain == 8760 * 3_600_000_000_000)
        #expect(c.limits.maxBodyBytes == 1 << 40)
        // Unwrapped first: #expect on an Optional<UInt64> trips ASan in a compiler-made AnyHashable thunk (Swift 6.3.1).
        #expect(try #require(c.backend(named: "b")).idleTimeout == 8760 * 3_600_000_000_000)
        #expect(c.bufferSize == 1 << 20)
    }

    @Test("units reject what they cannot represent", arguments: ["99999999999h", "18446744073709551615ms", "18446744074s", "1e3s", "", "ms"])
    func durationUnits(_ text: String) {
        #expect(Units.duration(text) == nil)
    }

    @Test("sizes reject what they cannot represent", arguments: ["9999999999999999g", "9223372036854775807k", "-1", "1.5k", "", "k"])
    func sizeUnits(_ text: String) {
        #expect(Units.size(text) == nil)
    }
}
