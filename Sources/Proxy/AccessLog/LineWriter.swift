/// Builds one access-log line in a fixed buffer, straight from bytes and integers: no String, no
/// allocation per line. A line that would overflow the buffer is cut short (every field is
/// bounded, so the buffer is sized for the longest line and this does not happen), and always
/// ends with its newline.
struct LineWriter {
    private let base: UnsafeMutableRawPointer
    /// Room for the line, less the byte kept for its newline.
    private let room: Int
    private(set) var count = 0

    init(_ buffer: UnsafeMutableRawBufferPointer) {
        base = buffer.baseAddress!
        room = buffer.count - 1
    }

    /// The line so far, ended with its newline.
    mutating func finish() -> UnsafeRawBufferPointer {
        base.storeBytes(of: 0x0A, toByteOffset: count, as: UInt8.self)
        return UnsafeRawBufferPointer(start: base, count: count + 1)
    }

    @inline(__always)
    mutating func byte(_ b: UInt8) {
        guard count < room else { return }
        base.storeBytes(of: b, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    mutating func raw(_ p: UnsafeRawBufferPointer) {
        guard let src = p.baseAddress else { return }
        let n = min(p.count, room - count)
        // Fields are short: a byte loop beats a call to memmove for them.
        if n <= 16 {
            for i in 0..<n { (base + count + i).storeBytes(of: src.load(fromByteOffset: i, as: UInt8.self), as: UInt8.self) }
        } else {
            (base + count).copyMemory(from: src, byteCount: n)
        }
        count += n
    }

    mutating func ascii(_ s: StaticString) {
        raw(UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    /// A non-negative integer in decimal (a negative one is written as 0).
    mutating func decimal(_ v: Int) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // room for 24 digits, more than an Int has
        withUnsafeMutableBytes(of: &digits) { d in
            var n = UInt(max(v, 0))
            var i = d.count
            repeat {
                i -= 1
                d[i] = UInt8(ascii: "0") + UInt8(n % 10)
                n /= 10
            } while n > 0
            raw(UnsafeRawBufferPointer(rebasing: d[i...]))
        }
    }

    /// Nanoseconds as seconds with milliseconds, as nginx writes times: `0.052`.
    mutating func seconds(_ nanos: UInt64) {
        let ms = (nanos + 500_000) / 1_000_000
        decimal(Int(ms / 1000))
        byte(UInt8(ascii: "."))
        threeDigits(Int(ms % 1000))
    }

    /// 0 to 999 as three digits (milliseconds).
    mutating func threeDigits(_ v: Int) {
        byte(UInt8(ascii: "0") + UInt8(v / 100 % 10))
        byte(UInt8(ascii: "0") + UInt8(v / 10 % 10))
        byte(UInt8(ascii: "0") + UInt8(v % 10))
    }

    /// Bytes a client chose (a request-target) made safe for the line: in the text format `"`,
    /// `\`, control bytes and bytes over 0x7E as `\xHH` (nginx's escaping), so a line is one line
    /// of printable ASCII and a quoted field ends where it seems to; in JSON `\"`, `\\` and
    /// `\u00HH`, so every line parses as JSON whatever the client sent.
    mutating func escaped(_ p: UnsafeRawBufferPointer, json: Bool) {
        guard var src = p.baseAddress else { return }
        let end = src + p.count
        while src < end {
            // The run of bytes that go as they are, copied at once (most lines are nothing else).
            var run = src
            while run < end, Self.isPlain(run.load(as: UInt8.self)) { run += 1 }
            raw(UnsafeRawBufferPointer(start: src, count: run - src))
            guard run < end else { return }
            let b = run.load(as: UInt8.self)
            if json && (b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\")) {
                byte(UInt8(ascii: "\\"))
                byte(b)
            } else {
                if json { ascii("\\u00") } else { ascii("\\x") }
                byte(Self.hex(b >> 4))
                byte(Self.hex(b & 0xF))
            }
            src = run + 1
        }
    }

    @inline(__always)
    private static func isPlain(_ b: UInt8) -> Bool {
        b >= 0x20 && b < 0x7F && b != UInt8(ascii: "\"") && b != UInt8(ascii: "\\")
    }

    @inline(__always)
    private static func hex(_ v: UInt8) -> UInt8 { v < 10 ? UInt8(ascii: "0") + v : UInt8(ascii: "a") + v - 10 }

    /// A String the proxy made (an address, a TLS version), escaped as a client's bytes are.
    mutating func escaped(_ s: String, json: Bool) {
        let done: Void? = s.utf8.withContiguousStorageIfAvailable { escaped(UnsafeRawBufferPointer($0), json: json) }
        if done == nil { Array(s.utf8).withUnsafeBytes { escaped($0, json: json) } }
    }
}
