/// Byte classes from RFC 9110 §5.6.2 (token) and §5.5 (field values).
@usableFromInline
enum ByteClass {
    /// tchar (RFC 9110 §5.6.2), by a 128-bit map: bit b of the pair is set for each token byte.
    @inline(__always) @usableFromInline
    static func isToken(_ b: UInt8) -> Bool {
        let low: UInt64 = 0x03FF_6CFA_0000_0000  // ! # $ % & ' * + - . 0-9
        let high: UInt64 = 0x57FF_FFFF_C7FF_FFFE  // A-Z ^ _ ` a-z | ~
        let word = b < 64 ? low : b < 128 ? high : 0
        return (word >> UInt64(b & 63)) & 1 != 0
    }

    /// field-vchar, SP or HTAB (obs-text allowed, as RFC 9110 §5.5 permits).
    @inline(__always) @usableFromInline
    static func isFieldValue(_ b: UInt8) -> Bool {
        b == 0x09 || (b >= 0x20 && b != 0x7F)
    }

    /// The index of the first byte in `from..<end` that may not appear in a field value (a control
    /// byte other than HTAB, or DEL), or `end`. Eight bytes at a time while a word holds none of
    /// those (the word tests can report a byte that is fine, never miss one; a flagged word is
    /// then checked byte by byte), so a typical value costs a few instructions per word.
    @inline(__always) @usableFromInline
    static func firstNonFieldValue(_ buf: UnsafeRawBufferPointer, from: Int, to end: Int) -> Int {
        var p = from
        if let base = buf.baseAddress {
            let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
            while p + 8 <= end {
                let x = base.loadUnaligned(fromByteOffset: p, as: UInt64.self)
                let control = (x &- ones &* 0x20) & ~x & highs  // some byte < 0x20
                let d = x ^ (ones &* 0x7F)
                let del = (d &- ones) & ~d & highs  // some byte == 0x7F
                if control | del != 0 { break }
                p += 8
            }
        }
        while p < end {
            if !isFieldValue(buf[p]) { return p }
            p += 1
        }
        return end
    }

    /// Eight bytes with each of A-Z made lowercase (bytes from 0x80 up are left alone): a byte
    /// gets 0x20 when it is at least "A" and not above "Z", both tested in the byte's low seven bits.
    @inline(__always) @usableFromInline
    static func lowercased(_ x: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        let low7 = x & ~highs
        let atLeastA = low7 &+ ones &* (0x80 - 0x41)  // high bit set where byte >= 0x41
        let aboveZ = low7 &+ ones &* (0x80 - 0x5B)  // high bit set where byte >= 0x5B
        let upper = atLeastA & ~aboveZ & ~x & highs
        return x | (upper >> 2)
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
    /// Case-insensitive ASCII comparison of a span with a lowercase literal, eight bytes at a time.
    @inlinable
    func equalsLowercase(_ range: ByteRange, _ literal: StaticString) -> Bool {
        let n = range.count
        guard n == literal.utf8CodeUnitCount, let base = baseAddress else { return n == 0 && n == literal.utf8CodeUnitCount }
        let p = base + range.start
        let lit = UnsafeRawPointer(literal.utf8Start)
        var i = 0
        while i + 8 <= n {
            let word = ByteClass.lowercased(p.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            if word != lit.loadUnaligned(fromByteOffset: i, as: UInt64.self) { return false }
            i += 8
        }
        while i < n {
            if ByteClass.lower(p.load(fromByteOffset: i, as: UInt8.self)) != lit.load(fromByteOffset: i, as: UInt8.self) { return false }
            i += 1
        }
        return true
    }

    public func string(_ range: ByteRange) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: self[range.start..<range.end]), as: UTF8.self)
    }
}
