@testable import HTTP1
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

/// The word-at-a-time case folding against the byte-at-a-time rule, for every byte value in
/// every lane of a word.
@Suite("Case folding")
struct CaseFoldingTests {
    @Test("eight bytes lowercased at once equal eight bytes lowercased one by one")
    func wordFold() throws {
        for b in 0...255 {
            for lane in 0..<8 {
                var bytes: [UInt8] = Array("aZ-9_Xq~".utf8)
                bytes[lane] = UInt8(b)
                let word = bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
                let folded = withUnsafeBytes(of: ByteClass.lowercased(word)) { Array($0) }
                let expected = bytes.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }
                #expect(folded == expected, "byte \(b) in lane \(lane)")
            }
        }
    }

    @Test("a field name matches its lowercase spelling in any case, and nothing a byte away")
    func names() {
        let name = "Transfer-Encoding"  // 17 bytes: two words and a tail
        for variant in [name, name.uppercased(), name.lowercased(), "tRaNsFeR-eNcOdInG"] {
            var parser = HeadParser(kind: .request)
            let bytes = Array("POST / HTTP/1.1\r\nHost: a\r\n\(variant): chunked\r\n\r\n".utf8)
            #expect(bytes.withUnsafeBytes { parser.parse($0) } == .complete)
            #expect(parser.head.chunked, "\(variant)")
        }
        let lowered = Array(name.lowercased().utf8)
        for at in 0..<lowered.count {
            for b in 0...255 {
                var bytes = lowered
                bytes[at] = UInt8(b)
                let matches = bytes.withUnsafeBytes { $0.equalsLowercase(ByteRange(start: 0, count: $0.count), "transfer-encoding") }
                let folded = b >= 0x41 && b <= 0x5A ? UInt8(b) | 0x20 : UInt8(b)
                #expect(matches == (folded == lowered[at]), "byte \(b) at \(at)")
            }
        }
    }
}
