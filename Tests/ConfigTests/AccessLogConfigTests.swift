import Config
import Testing

/// `access_log off | PATH [text|json] [buffer=SIZE]` (issue 8 item 4).
@Suite("Configuration access_log")
struct AccessLogConfigTests {
    static let rest = "\nbackend b { server 1.2.3.4:5; }\nserver { listen 127.0.0.1:0; proxy_pass b; }\n"

    static func load(_ top: String) throws(ConfigError) -> Configuration {
        try ConfigLoader.load(text: top + rest, file: "a.conf")
    }

    @Test("off by default; a path means the text format and a 1 MiB ring; json and buffer= in either order")
    func parsed() throws {
        #expect(try Self.load("").accessLog == nil)
        #expect(try Self.load("access_log off;").accessLog == nil)
        #expect(try Self.load("access_log /var/log/a.log;").accessLog == AccessLogSettings(path: "/var/log/a.log", format: .text, buffer: 1 << 20))
        #expect(try Self.load("access_log /a.log json;").accessLog == AccessLogSettings(path: "/a.log", format: .json))
        #expect(try Self.load("access_log /a.log buffer=64k json;").accessLog == AccessLogSettings(path: "/a.log", format: .json, buffer: 64 << 10))
        #expect(try Self.load("access_log /a.log text buffer=2m;").accessLog == AccessLogSettings(path: "/a.log", format: .text, buffer: 2 << 20))
        #expect(try Self.load("access_log /a.log;\naccess_log off;").accessLog == nil, "the last one counts, as for every directive")
    }

    static let bad: [(text: String, line: Int, message: String)] = [
        ("\naccess_log logs/access.log;", 2, "expected off or an absolute path, got \"logs/access.log\""),
        ("access_log /a.log xml;", 1, "unknown option \"xml\" (text, json or buffer=SIZE)"),
        ("access_log /a.log buffer=1k;", 1, "buffer=1k: expected a size from 64k to 256m"),
        ("access_log /a.log buffer=lots;", 1, "buffer=lots: expected a size from 64k to 256m"),
        ("access_log off json;", 1, "off takes nothing after it"),
        ("access_log;", 1, "takes off, or a path"),
        ("access_log /a.log json buffer=64k text;", 1, "takes off, or a path"),
    ]

    @Test("errors name file, line and directive", arguments: bad)
    func errors(_ c: (text: String, line: Int, message: String)) {
        expectConfigError(c.text + Self.rest, file: "a.conf", line: c.line, directive: "access_log", message: c.message)
    }
}
