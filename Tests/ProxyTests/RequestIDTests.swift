import HTTP1
@testable import Proxy
import Testing

@Suite("X-Request-ID")
struct RequestIDTests {
    static let valid = ["a", "0f8fad5b-d9cb-469f-a165-70867728950e", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "req_42.7:x+y/z=@", String(repeating: "7", count: 128)]
    static let invalid = ["", String(repeating: "7", count: 129), "two words", "quote\"d", "semi;colon", "comma,list", "tab\tin", "caf\u{e9}", "{json}", "<b>"]

    @Test("valid incoming ids: 1 to 128 of letters, digits and -_.:+/=@", arguments: valid)
    func accepted(_ v: String) {
        var source = RequestIDSource()
        #expect(Array(v.utf8).withUnsafeBytes { RequestID.isValid($0) })
        #expect(Self.line(for: "GET / HTTP/1.1\r\nHost: a\r\nX-Request-ID: \(v)\r\n\r\n", &source) == "X-Request-ID: \(v)\r\n")
    }

    @Test("anything else is replaced by one the proxy makes", arguments: invalid)
    func replaced(_ v: String) {
        var source = RequestIDSource()
        #expect(!Array(v.utf8).withUnsafeBytes { RequestID.isValid($0) })
        let line = Self.line(for: "GET / HTTP/1.1\r\nHost: a\r\nX-Request-ID: \(v)\r\n\r\n", &source)
        #expect(line != nil && Self.isGenerated(line!), "\(String(describing: line))")
    }

    @Test("two X-Request-ID fields, or none: the proxy makes one, 32 hex digits, different each time")
    func generated() {
        var source = RequestIDSource()
        let two = Self.line(for: "GET / HTTP/1.1\r\nHost: a\r\nX-Request-ID: a\r\nX-Request-ID: b\r\n\r\n", &source)
        #expect(two.map(Self.isGenerated) == true, "\(String(describing: two))")
        var seen = Set<String>()
        for _ in 0..<1000 {
            let l = Self.line(for: "GET / HTTP/1.1\r\nHost: a\r\n\r\n", &source)!
            #expect(Self.isGenerated(l))
            seen.insert(l)
        }
        #expect(seen.count == 1000)
    }

    static func line(for request: String, _ source: inout RequestIDSource) -> String? {
        let bytes = Array(request.utf8)
        var parser = HeadParser(kind: .request)
        guard bytes.withUnsafeBytes({ parser.parse($0) }) == .complete else { return nil }
        let out = RequestID.makeLineBuffer()
        defer { out.deallocate() }
        let n = bytes.withUnsafeBytes { b in parser.lendHead { RequestID.line(into: out, head: $0, bytes: b.baseAddress!, source: &source) } }
        return String(decoding: UnsafeRawBufferPointer(rebasing: out[0..<n]), as: UTF8.self)
    }

    static func isGenerated(_ line: String) -> Bool {
        guard line.hasPrefix("X-Request-ID: "), line.hasSuffix("\r\n") else { return false }
        let id = Array(line.utf8).dropFirst(14).dropLast(2)  // bytes: "\r\n" is one Character
        return id.count == 32 && id.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }
}
