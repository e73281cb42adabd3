/// Stops the run when a property of the code under test does not hold. libFuzzer sees the trap as a
/// crash and keeps the input; the message says which property broke.
@inline(__always)
public func require(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("fuzz property violated: \(message())") }
}

/// The input as printable text for a failure message (control bytes escaped, long input cut).
public func quoted(_ bytes: UnsafeRawBufferPointer, limit: Int = 400) -> String {
    var s = ""
    for b in bytes.prefix(limit) {
        switch b {
        case 0x0D: s += "\\r"
        case 0x0A: s += "\\n"
        case 0x09: s += "\\t"
        case 0x5C: s += "\\\\"
        case 0x20..<0x7F: s.unicodeScalars.append(Unicode.Scalar(b))
        default: s += "\\x" + String(b, radix: 16)
        }
    }
    return bytes.count > limit ? s + "…(\(bytes.count) bytes)" : s
}
