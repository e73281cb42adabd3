import Config
import Foundation
@testable import Proxy
import Testing

/// The access log's two line formats, from an entry made by hand (no sockets, a set clock).
@Suite("Access log lines")
struct AccessLineTests {
    static func line(_ e: AccessEntry, _ format: AccessLogSettings.Format, seconds: Int = 1_796_236_669, millis: Int = 7) -> String {
        let clock = LogClock()
        clock.set(seconds: seconds, millis: millis)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: AccessLog.lineBytes, alignment: 8)
        defer { buffer.deallocate() }
        var w = LineWriter(buffer)
        e.write(format, into: &w, clock: clock)
        return String(decoding: w.finish(), as: UTF8.self)
    }

    /// An entry whose byte fields point into `storage` (kept alive by the caller).
    static func forwarded(_ storage: [[UInt8]]) -> AccessEntry {
        var e = AccessEntry(client: "127.0.0.1")
        e.method = UnsafeRawBufferPointer(start: storage[0].withUnsafeBytes { $0.baseAddress }, count: storage[0].count)
        e.target = UnsafeRawBufferPointer(start: storage[1].withUnsafeBytes { $0.baseAddress }, count: storage[1].count)
        e.requestID = UnsafeRawBufferPointer(start: storage[2].withUnsafeBytes { $0.baseAddress }, count: storage[2].count)
        e.status = 200
        e.bytesSent = 1234
        e.duration = 52_300_000
        e.upstream = "127.0.0.1:9001"
        e.connect = 0
        e.header = 51_000_000
        e.tls = "TLSv1.3"
        return e
    }

    @Test("text: nginx-like, one line, - for what did not happen")
    func text() {
        let storage = [Array("GET".utf8), Array("/x?a=1".utf8), Array("trace-42".utf8)]
        let e = Self.forwarded(storage)
        #expect(Self.line(e, .text) == "127.0.0.1 - [02/Dec/2026:18:37:49 +0000] \"GET /x?a=1 HTTP/1.1\" 200 1234 0.052 upstream=127.0.0.1:9001 connect=0.000 response=0.051 retries=0 tls=TLSv1.3 id=trace-42\n")
        var refused = AccessEntry(client: "::1")
        refused.status = 400
        refused.bytesSent = 97
        #expect(Self.line(refused, .text, seconds: 1_709_164_805) == "::1 - [29/Feb/2024:00:00:05 +0000] \"-\" 400 97 0.000 upstream=- connect=- response=- retries=0 tls=- id=-\n")
    }

    @Test("json: one object a line that JSONSerialization reads back, null for what did not happen")
    func json() throws {
        let storage = [Array("POST".utf8), Array("/upload".utf8), Array("0f8fad5b".utf8)]
        var e = Self.forwarded(storage)
        e.retries = 1
        e.tls = nil
        let text = Self.line(e, .json)
        #expect(text.hasSuffix("}\n") && text.filter { $0 == "\n" }.count == 1)
        let o = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(o["time"] as? String == "2026-12-02T18:37:49.007Z")
        #expect(o["client"] as? String == "127.0.0.1" && o["method"] as? String == "POST" && o["target"] as? String == "/upload")
        #expect(o["protocol"] as? String == "HTTP/1.1" && o["status"] as? Int == 200 && o["bytes_sent"] as? Int == 1234)
        #expect(o["request_time"] as? Double == 0.052 && o["upstream_connect_time"] as? Double == 0 && o["upstream_header_time"] as? Double == 0.051)
        #expect(o["upstream_addr"] as? String == "127.0.0.1:9001" && o["retries"] as? Int == 1 && o["request_id"] as? String == "0f8fad5b")
        #expect(o["tls"] is NSNull)

        var refused = AccessEntry(client: "127.0.0.1")
        refused.status = 400
        let r = try #require(try JSONSerialization.jsonObject(with: Data(Self.line(refused, .json).utf8)) as? [String: Any])
        for key in ["method", "target", "protocol", "upstream_addr", "upstream_connect_time", "upstream_header_time", "tls", "request_id"] {
            #expect(r[key] is NSNull, "\(key)")
        }
    }

    @Test("what a client chose is escaped: quotes, backslashes, control and high bytes; a long target is cut and marked")
    func escaping() throws {
        let target: [UInt8] = Array("/a\"b\\c".utf8) + [0x01, 0x7F, 0xC3, 0xA9]
        let storage = [Array("GET".utf8), target, Array("id".utf8)]
        var e = Self.forwarded(storage)
        e.versionMinor = 0
        let text = Self.line(e, .text)
        #expect(text.contains("\"GET /a\\x22b\\x5cc\\x01\\x7f\\xc3\\xa9 HTTP/1.0\""), "\(text)")
        let json = Self.line(e, .json)
        let o = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any], "\(json)")
        #expect(o["target"] as? String == "/a\"b\\c\u{01}\u{7F}\u{C3}\u{A9}")
        #expect(o["protocol"] as? String == "HTTP/1.0")

        let record = AccessRecord()
        let method = Array("GET".utf8), long = [UInt8](repeating: UInt8(ascii: "a"), count: 3000)
        method.withUnsafeBytes { m in long.withUnsafeBytes { t in record.begin(method: m, target: t, versionMinor: 1) } }
        var cut = AccessEntry(client: "127.0.0.1")
        record.fill(&cut)
        #expect(Self.line(cut, .text).contains("\"GET " + String(repeating: "a", count: AccessRecord.targetLimit) + "... HTTP/1.1\""))
    }
}
