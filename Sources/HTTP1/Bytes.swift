/// Byte classes from RFC 9110 §5.6.2 (token) and §5.5 (field values).
@usableFromInline
enum ByteClass {
    @inline(__always) @usableFromInline
    static func isToken(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
             UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
             UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    /// field-vchar, SP or HTAB (obs-text allowed, as RFC 9110 §5.5 permits).
    @inline(__always) @usableFromInline
    static func isFieldValue(_ b: UInt8) -> Bool {
        b == 0x09 || (b >= 0x20 && b != 0x7F)
    }

    /// A visible request-target byte (RFC 3986 characters are a subset; no spaces or controls).
    @inline(__always) @usableFromInline
    static func isTarget(_ b: UInt8) -> Bool {
        b > 0x20 && b < 0x7F
    }

    @inline(__always) @usableFromInline
    static func lower(_ b: UInt8) -> UInt8 {
        (b >= 0x41 && b <= 0x5A) ? b | 0x20 : b
    }

    @inline(__always) @usableFromInline
    static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return b - 0x30
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return b - 0x61 + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return b - 0x41 + 10
        default: return nil
        }
    }
}

/// A span of bytes inside a buffer, by offset from the start of the message head.
public struct ByteRange: Equatable, Sendable {
    public var start: Int
    public var count: Int
    public init(start: Int, count: Int) {
        self.start = start
        self.count = count
    }
    public var end: Int { start + count }
}

extension UnsafeRawBufferPointer {
    /// Case-insensitive ASCII comparison of a span with a lowercase literal.
    @inlinable
    func equalsLowercase(_ range: ByteRange, _ literal: StaticString) -> Bool {
        guard range.count == literal.utf8CodeUnitCount else { return false }
        let lit = literal.utf8Start
        for i in 0..<range.count where ByteClass.lower(self[range.start + i]) != lit[i] {
            return false
        }
        return true
    }

    public func string(_ range: ByteRange) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: self[range.start..<range.end]), as: UTF8.self)
    }
}
