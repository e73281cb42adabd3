import Glibc
import HTTP1

/// X-Request-ID: a client's (or an edge proxy's in front) is passed on when it is one field of 1 to
/// 128 letters, digits and `-_.:+/=@` (UUIDs, hex, base64, ULIDs); anything else is replaced, so
/// what a backend logs is safe to log. Otherwise the proxy makes one: 32 hex digits, 128 bits.
enum RequestID {
    static let maxLength = 128
    static let prefix = Array("X-Request-ID: ".utf8)
    /// Room for the whole line.
    static let lineCapacity = prefix.count + maxLength + 2

    static func isValid(_ v: UnsafeRawBufferPointer) -> Bool {
        guard v.count >= 1, v.count <= maxLength else { return false }
        for b in v {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): continue
            case UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: ":"), UInt8(ascii: "+"), UInt8(ascii: "/"),
                 UInt8(ascii: "="), UInt8(ascii: "@"): continue
            default: return false
            }
        }
        return true
    }

    /// A buffer for `line`, its "X-Request-ID: " written once.
    static func makeLineBuffer() -> UnsafeMutableRawBufferPointer {
        let b = UnsafeMutableRawBufferPointer.allocate(byteCount: lineCapacity, alignment: 8)
        b.copyBytes(from: prefix)
        return b
    }

    /// Completes "X-Request-ID: <id>\r\n" in `line` (from `makeLineBuffer`) and returns its
    /// length: the one X-Request-ID of `head` when valid, else a new one from `source`.
    static func line(into line: UnsafeMutableRawBufferPointer, head: borrowing MessageHead, bytes p: UnsafeRawPointer,
                     source: inout RequestIDSource) -> Int {
        var n = prefix.count
        var found: ByteRange?
        var count = 0
        // One named by Connection was meant for this hop only: it is not the request's id.
        for f in head.headers where f.kind == .xRequestID && !f.namedByConnection {
            count += 1
            found = f.value
        }
        if count == 1, let v = found, isValid(UnsafeRawBufferPointer(start: p + v.start, count: v.count)) {
            (line.baseAddress! + n).copyMemory(from: p + v.start, byteCount: v.count)
            n += v.count
        } else {
            source.hex(into: line.baseAddress! + n)
            n += 32
        }
        line[n] = 0x0D
        line[n + 1] = 0x0A
        return n + 2
    }
}

/// Makes request ids: wyrand seeded from the kernel at start; two draws a request, no syscall.
struct RequestIDSource {
    private var state: UInt64

    init() {
        var kernel = SystemRandomNumberGenerator()  // getrandom(2)
        state = kernel.next()
    }

    mutating func next() -> UInt64 {
        state &+= 0xA076_1D64_78BD_642F
        let m = state.multipliedFullWidth(by: state ^ 0xE703_7ED1_A0B4_28DB)
        return m.high ^ m.low
    }

    /// 32 lowercase hex digits at `p`: each draw's 16 nibbles spread into 16 bytes and made
    /// ASCII eight at a time (a nibble over 9 gets 'a' - '0' - 10 more). Nibble order is of no
    /// matter: every one is random.
    mutating func hex(into p: UnsafeMutableRawPointer) {
        for i in 0..<2 {
            let v = next()
            p.storeBytes(of: Self.ascii(Self.spread(UInt32(truncatingIfNeeded: v))), toByteOffset: i * 16, as: UInt64.self)
            p.storeBytes(of: Self.ascii(Self.spread(UInt32(truncatingIfNeeded: v >> 32))), toByteOffset: i * 16 + 8, as: UInt64.self)
        }
    }

    /// The 8 nibbles of `x`, one per byte.
    @inline(__always)
    static func spread(_ x: UInt32) -> UInt64 {
        var v = UInt64(x)
        v = (v | (v << 16)) & 0x0000_FFFF_0000_FFFF
        v = (v | (v << 8)) & 0x00FF_00FF_00FF_00FF
        v = (v | (v << 4)) & 0x0F0F_0F0F_0F0F_0F0F
        return v
    }

    /// Eight nibble bytes as their lowercase hex digits.
    @inline(__always)
    static func ascii(_ v: UInt64) -> UInt64 {
        let over9 = ((v &+ 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101
        return v &+ 0x3030_3030_3030_3030 &+ over9 &* 0x27
    }
}
