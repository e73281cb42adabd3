/// The ways one input is fed to an incremental decoder: whole, split at points derived from the
/// bytes (so a mutation that keeps the bytes keeps the split, and crashes replay exactly), and one
/// byte at a time when the input is short. Every way must give the same verdict.
public enum Pieces {
    /// Inputs up to this many bytes are also fed one byte at a time.
    public static let bytewiseLimit = 256

    /// FNV-1a of the input: a cheap, stable source of split points.
    public static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }

    /// Ends of the pieces, each list ascending and ending at `count`. The first list is the whole input.
    public static func cuts(_ bytes: UnsafeRawBufferPointer, bytewise: Bool = true) -> [[Int]] {
        let n = bytes.count
        var ways: [[Int]] = [[n]]
        guard n >= 2 else { return ways }
        let h = hash(bytes)
        let a = 1 + Int(h % UInt64(n - 1))
        let b = 1 + Int((h >> 32) % UInt64(n - 1))
        ways.append([a, n])
        if a != b { ways.append([min(a, b), max(a, b), n]) }
        if bytewise && n <= bytewiseLimit { ways.append(Array(1...n)) }
        return ways
    }

    /// Calls `body` with a copy of the first `count` bytes in an allocation of exactly that size, so
    /// that a read past the bytes received so far is caught by AddressSanitizer.
    public static func withExactCopy<R>(_ bytes: UnsafeRawBufferPointer, _ count: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 1)
        defer { copy.deallocate() }
        if count > 0 { copy.baseAddress!.copyMemory(from: bytes.baseAddress!, byteCount: count) }
        return body(UnsafeRawBufferPointer(rebasing: copy[0..<count]))
    }
}
