/// How a lenient server might read a field name: ASCII case ignored, '_' taken for '-', a run of
/// '-' or '_' taken as one '-', and separators at either end dropped (CGI-style servers turn both
/// `X-Forwarded-For` and `X_Forwarded__For-` into `HTTP_X_FORWARDED_FOR`).
public enum FieldName {
    /// Whether the name at `range` of `buf` reads as `lower` (lowercase, single '-' separators)
    /// under the lenient reading above. Stops at the first byte that differs, so a name that starts
    /// differently costs a byte or two.
    @inlinable
    public static func readsAs(_ buf: UnsafeRawBufferPointer, _ range: ByteRange, _ lower: UnsafeRawBufferPointer) -> Bool {
        var j = 0
        var pendingSeparator = false
        for k in range.start..<range.end {
            let b = ByteClass.lower(buf[k])
            if b == UInt8(ascii: "-") || b == UInt8(ascii: "_") {
                pendingSeparator = j > 0
                continue
            }
            if pendingSeparator {
                guard j < lower.count, lower[j] == UInt8(ascii: "-") else { return false }
                j += 1
                pendingSeparator = false
            }
            guard j < lower.count, lower[j] == b else { return false }
            j += 1
        }
        return j == lower.count
    }

    @inlinable
    static func readsAs(_ buf: UnsafeRawBufferPointer, _ range: ByteRange, _ lower: StaticString) -> Bool {
        readsAs(buf, range, UnsafeRawBufferPointer(start: lower.utf8Start, count: lower.utf8CodeUnitCount))
    }

    /// Whether a name that is none of the framing or forwarding fields exactly (that was checked
    /// first, by length) still reads as one of them under the lenient reading: such a name is
    /// refused, since the backend may act on it as the real field the proxy never saw.
    @inlinable
    static func isLookalike(_ buf: UnsafeRawBufferPointer, _ name: ByteRange) -> Bool {
        var k = name.start
        while k < name.end && (buf[k] == UInt8(ascii: "-") || buf[k] == UInt8(ascii: "_")) { k += 1 }
        guard k < name.end else { return false }
        switch ByteClass.lower(buf[k]) {
        case UInt8(ascii: "c"): return readsAs(buf, name, "content-length") || readsAs(buf, name, "connection")
        case UInt8(ascii: "t"): return readsAs(buf, name, "transfer-encoding")
        case UInt8(ascii: "h"): return readsAs(buf, name, "host")
        case UInt8(ascii: "x"):
            return readsAs(buf, name, "x-forwarded-for") || readsAs(buf, name, "x-forwarded-proto") || readsAs(buf, name, "x-forwarded-host")
        default: return false
        }
    }
}
