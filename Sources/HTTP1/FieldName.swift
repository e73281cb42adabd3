/// How a lenient server might read a field name: ASCII case ignored, '_' taken for '-', a run of
/// '-' or '_' taken as one '-', and separators at either end dropped (CGI-style servers turn both
/// `X-Forwarded-For` and `X_Forwarded__For-` into `HTTP_X_FORWARDED_FOR`).
public enum FieldName {
    /// Whether the name at `range` of `buf` reads as `lower` (lowercase, single '-' separators)
    /// under the lenient reading above. Stops at the first byte that differs, so a name that starts
    /// differently costs a byte or two.
    public static func readsAs(_ buf: UnsafeRawBufferPointer, _ range: ByteRange, _ lower: UnsafeRawBufferPointer) -> Bool {
        guard let lit = lower.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return range.count == 0 }
        return readsAs(buf, range, lit, lower.count)
    }

    @inline(__always)
    static func readsAs(_ buf: UnsafeRawBufferPointer, _ range: ByteRange, _ lower: StaticString) -> Bool {
        readsAs(buf, range, lower.utf8Start, lower.utf8CodeUnitCount)
    }

    @inline(__always)
    static func readsAs(_ buf: UnsafeRawBufferPointer, _ range: ByteRange, _ lit: UnsafePointer<UInt8>, _ count: Int) -> Bool {
        var j = 0
        var pendingSeparator = false
        var k = range.start
        let end = range.end
        while k < end {
            var b = buf[k]
            k += 1
            if b == UInt8(ascii: "-") || b == UInt8(ascii: "_") {
                pendingSeparator = j > 0
                continue
            }
            if b &- 0x41 < 26 { b |= 0x20 }
            if pendingSeparator {
                guard j < count, lit[j] == UInt8(ascii: "-") else { return false }
                j += 1
                pendingSeparator = false
            }
            guard j < count, lit[j] == b else { return false }
            j += 1
        }
        return j == count
    }

    /// Whether the name starts with 'x' or a separator, so may read as an `x-` field: one byte
    /// looked at before a full lenient comparison (most names, `content-type`, stop here).
    @inline(__always)
    static func mayReadAsX(_ buf: UnsafeRawBufferPointer, _ name: ByteRange) -> Bool {
        let b = buf[name.start]
        return b | 0x20 == UInt8(ascii: "x") || b == UInt8(ascii: "-") || b == UInt8(ascii: "_")
    }

    /// Whether a name that is none of the framing or forwarding fields exactly (that was checked
    /// first, by length) still reads as one of them under the lenient reading: such a name is
    /// refused, since the backend may act on it as the real field the proxy never saw.
    @inline(__always)
    static func isLookalike(_ buf: UnsafeRawBufferPointer, _ name: ByteRange) -> Bool {
        var k = name.start
        while k < name.end && (buf[k] == UInt8(ascii: "-") || buf[k] == UInt8(ascii: "_")) { k += 1 }
        guard k < name.end else { return false }
        // Dropping separators only shortens a name, so a name shorter than a field cannot read as it.
        let n = name.count
        switch ByteClass.lower(buf[k]) {
        case UInt8(ascii: "c"): return (n >= 14 && readsAs(buf, name, "content-length")) || (n >= 10 && readsAs(buf, name, "connection"))
        case UInt8(ascii: "t"): return n >= 17 && readsAs(buf, name, "transfer-encoding")
        case UInt8(ascii: "h"): return readsAs(buf, name, "host")
        case UInt8(ascii: "x"):
            return n >= 15 && (readsAs(buf, name, "x-forwarded-for") || readsAs(buf, name, "x-forwarded-proto") || readsAs(buf, name, "x-forwarded-host"))
        default: return false
        }
    }
}
