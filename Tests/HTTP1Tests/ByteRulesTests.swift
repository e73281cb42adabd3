import HTTP1
import Testing

/// The parser's byte classes (a bit map for names, a word-at-a-time scan for values) against the
/// grammar spelled out byte by byte: every byte value, at every position of a value longer than
/// two words, gets the verdict the plain rule gives.
@Suite("Field bytes")
struct ByteRulesTests {
    static let tchar = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)

    static func parse(_ bytes: [UInt8]) -> HeadResult {
        var parser = HeadParser(kind: .request)
        return bytes.withUnsafeBytes { parser.parse($0) }
    }

    static func request(field: [UInt8]) -> [UInt8] {
        Array("GET / HTTP/1.1\r\nHost: a\r\n".utf8) + field + Array("\r\n\r\n".utf8)
    }

    @Test("a name byte is accepted exactly when it is a tchar")
    func nameBytes() {
        for b in 0...255 {
            let byte = UInt8(b)
            if byte == UInt8(ascii: ":") || byte == 0x0A { continue }  // end the name / the line
            let result = Self.parse(Self.request(field: Array("X".utf8) + [byte] + Array("Y: v".utf8)))
            if Self.tchar.contains(byte) {
                #expect(result == .complete, "byte \(b) in a name")
            } else {
                #expect(result != .complete, "byte \(b) in a name")
            }
        }
    }

    @Test("a value byte at any position: accepted iff HTAB, SP..~ or obs-text; bare CR named as such")
    func valueBytes() {
        let filler = Array("abcdefghijklmnopqrstuvw".utf8)  // 23 bytes: three words, not aligned
        for b in 0...255 {
            let byte = UInt8(b)
            if byte == 0x0A { continue }  // a bare LF ends the line: its own rule
            for at in 0..<filler.count {
                var value = filler
                value[at] = byte
                let result = Self.parse(Self.request(field: Array("X-V: ".utf8) + value))
                let allowed = byte == 0x09 || (byte >= 0x20 && byte != 0x7F)
                if allowed {
                    #expect(result == .complete, "byte \(b) at \(at)")
                } else {
                    let message = byte == 0x0D ? "bare CR" : "bad byte in header value"
                    #expect(result == .error(.badRequest(message)), "byte \(b) at \(at)")
                }
            }
        }
    }

    @Test("trailing whitespace is not part of a value; inner whitespace is")
    func valueSpan() throws {
        let bytes = Self.request(field: Array("X-V: \t a b \t \t".utf8))
        var parser = HeadParser(kind: .request)
        let result = bytes.withUnsafeBytes { parser.parse($0) }
        #expect(result == .complete)
        let field = try #require(parser.head.headers.last)
        let value = bytes.withUnsafeBytes { $0.string(field.value) }
        #expect(value == "a b")
    }
}
