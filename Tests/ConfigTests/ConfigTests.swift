import Config
import Foundation
import Testing

@Suite("Configuration")
struct ConfigTests {
    static let root: String = {
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        return parts.joined(separator: "/")
    }()

    @Test("the committed proxy.conf is valid and means what it says")
    func committedConfig() throws {
        let text = try String(contentsOfFile: Self.root + "/proxy.conf", encoding: .utf8)
        let c = try ConfigLoader.load(text: text, file: "proxy.conf")
        #expect(c.servers.first?.listen.map(\.address) == [HostPort(host: "127.0.0.1", port: 8080)])
        #expect(c.backend(named: "demo")?.servers == [HostPort(host: "127.0.0.1", port: 9001)])
        #expect(c.metrics == HostPort(host: "127.0.0.1", port: 9101))
        #expect(c.timeouts.upstreamConnect == 5_000_000_000)
        #expect(c.workers == 0 && c.pidFile == "/tmp/gatehouse.pid")
    }

    @Test("defaults apply where the file is silent")
    func defaults() throws {
        let c = try ConfigLoader.load(text: "backend b { server 10.0.0.1:80; server [::1]:81; balance least_conn; }\nserver { listen *:0; proxy_pass b; }", file: "x.conf")
        let g = try #require(c.backend(named: "b"))
        #expect(g.servers.count == 2 && g.servers[1].host == "::1")
        #expect(g.balance == .leastConnections)
        #expect(g.maxConnections == 10_000 && g.maxIdle == nil && g.queueTimeout == 5_000_000_000)
        #expect(c.timeouts == Timeouts())
        #expect(c.servers[0].listen[0].address.host == "0.0.0.0")
        #expect(c.requestBuffer == 64 * 1024 && c.responseBuffer == 256 * 1024)
        #expect(c.limits.bufferMemory == 64 << 20 && c.limits.minRate == 240 && c.limits.minRateGrace == 5_000_000_000)
        #expect(c.errorLog == "stderr" && c.metrics == HostPort(host: "127.0.0.1", port: 9101) && c.workers == 1)
        let w = try ConfigLoader.load(text: "workers 4;\nbackend b { server 10.0.0.1:80; }\nserver { listen *:0; proxy_pass b; }", file: "x.conf")
        #expect(w.workers == 4)
        let auto = try ConfigLoader.load(text: "workers auto;\nbackend b { server 10.0.0.1:80; }\nserver { listen *:0; proxy_pass b; }", file: "x.conf")
        #expect(auto.workers == 0 && auto.pidFile == nil)
        let pid = try ConfigLoader.load(text: "pid_file /run/gh.pid;\nbackend b { server 10.0.0.1:80; }\nserver { listen *:0; proxy_pass b; }", file: "x.conf")
        #expect(pid.pidFile == "/run/gh.pid")
    }

    @Test("buffering and the minimum rate are read from the file")
    func buffering() throws {
        let c = try ConfigLoader.load(text: "request_buffer 1m;\nresponse_buffer 8m;\nlimits { buffer_memory 2g; min_rate 0; min_rate_grace 250ms; }\nbackend b { server 10.0.0.1:80; }\nserver { listen *:0; proxy_pass b; }", file: "x.conf")
        #expect(c.requestBuffer == 1 << 20 && c.responseBuffer == 8 << 20)
        #expect(c.limits.bufferMemory == 2 << 30 && c.limits.minRate == 0 && c.limits.minRateGrace == 250_000_000)
    }

    @Test("max_idle takes a number or auto", arguments: [("auto", nil), ("0", 0), ("64", 64)] as [(String, Int?)])
    func maxIdle(_ c: (String, Int?)) throws {
        let text = "backend b {\n server 10.0.0.1:80;\n max_idle \(c.0);\n}\nserver { listen *:0; proxy_pass b; }"
        #expect(try ConfigLoader.load(text: text, file: "x.conf").backend(named: "b")?.maxIdle == c.1)
    }

    @Test("units", arguments: [("250ms", UInt64(250_000_000)), ("10s", 10_000_000_000), ("2m", 120_000_000_000), ("3", 3_000_000_000)])
    func durations(_ c: (String, UInt64)) {
        #expect(Units.duration(c.0) == c.1)
    }

    static let bad: [(String, Int, String?, String)] = [
        ("bogus 1;\n", 1, "bogus", "unknown directive"),
        ("\n\ntimeouts {\n  keepalive soon;\n}\n", 4, "keepalive", "invalid duration"),
        ("backend b {\n server nowhere;\n}\n", 2, "server", "invalid address"),
        ("backend b { server 1.2.3.4:5; }\nserver {\n listen 1.2.3.4:80;\n proxy_pass c;\n}\n", 2, "proxy_pass", "unknown backend"),
        ("backend b {\n server 1.2.3.4:5;\n balance random;\n}\n", 3, "balance", "unknown method"),
        ("log_level info\n", 1, "log_level", "missing"),
        ("backend b { server 1.2.3.4:5; }\n", 1, "server", "no server block"),
        ("limits { max_header_bytes 64k; }\nbackend b { server 1.2.3.4:5; }\nserver { listen 1.2.3.4:80; proxy_pass b; }", 1, "max_header_bytes", "buffer_size"),
        ("backend b {\n}\n", 1, "backend", "no server"),
        ("backend b {\n server 1.2.3.4:5;\n max_idle lots;\n}\n", 3, "max_idle", "invalid number \"lots\" (at least 0, or auto)"),
        ("backend b {\n server 1.2.3.4:5;\n max_idle -1;\n}\n", 3, "max_idle", "or auto"),
        ("backend b {\n server 1.2.3.4:5;\n max_idle auto auto;\n}\n", 3, "max_idle", "exactly one argument"),
        ("server { listen 1:1; proxy_pass b; \n", 1, "server", "missing \"}\""),
        ("\nresponse_buffer 0;\n", 2, "response_buffer", "at least 4k"),
        ("request_buffer 1k;\n", 1, "request_buffer", "at least 4k"),
        ("limits {\n buffer_memory 64k;\n}\n", 2, "buffer_memory", "at least 1m"),
        ("limits {\n min_rate fast;\n}\n", 2, "min_rate", "invalid number"),
        ("\nerror_log logs/error.log;\n", 2, "error_log", "expected stderr or an absolute path, got \"logs/error.log\""),
        ("workers 0;\n", 1, "workers", "from 1 to 256, or auto"),
        ("\n\npid_file gatehouse.pid;\n", 3, "pid_file", "expected off or an absolute path, got \"gatehouse.pid\""),
        ("workers many;\n", 1, "workers", "from 1 to 256, or auto"),
    ]

    @Test("errors name file, line and directive", arguments: bad)
    func errors(_ c: (String, Int, String?, String)) {
        do {
            _ = try ConfigLoader.load(text: c.0, file: "bad.conf")
            Issue.record("accepted: \(c.0)")
        } catch {
            #expect(error.file == "bad.conf")
            #expect(error.line == c.1, "\(error)")
            #expect(error.directive == c.2, "\(error)")
            #expect(error.message.contains(c.3), "\(error)")
            #expect(error.description.hasPrefix("bad.conf:\(c.1):"))
        }
    }
}
