import HTTP1

/// Counts of the fields of a head by kind, and the checks every forwarded head shares.
public struct FieldCensus {
    public private(set) var counts: [HeaderKind: Int] = [:]
    public private(set) var hopByHop = 0
    let head: MessageHead
    let p: UnsafeRawBufferPointer

    public init(_ head: MessageHead, _ p: UnsafeRawBufferPointer) {
        self.head = head
        self.p = p
        for f in head.headers {
            counts[f.kind, default: 0] += 1
            if f.kind.isHopByHop { hopByHop += 1 }
        }
    }

    public subscript(_ kind: HeaderKind) -> Int { counts[kind] ?? 0 }

    /// The fields named `lower` (lowercase ASCII), ignoring case.
    public func count(named lower: String) -> Int {
        head.headers.filter { lowercased(p, $0.name) == lower }.count
    }

    /// Fields whose name a lenient parser could read as one of `protected` (lowercase): '_' read as
    /// '-', runs of '-' as one, any case. Only the exact spelling is allowed.
    public func lookalikes(of protected: [String]) -> [String] {
        var out: [String] = []
        for f in head.headers {
            let name = lowercased(p, f.name)
            var folded = ""
            for c in name.unicodeScalars {
                let c2: Unicode.Scalar = c == "_" ? "-" : c
                if c2 == "-" && folded.hasSuffix("-") { continue }
                folded.unicodeScalars.append(c2)
            }
            if protected.contains(folded) && !protected.contains(name) { out.append(name) }
        }
        return out
    }
}

/// The bytes of `r` in `p`, ASCII-lowercased, as a string.
public func lowercased(_ p: UnsafeRawBufferPointer, _ r: ByteRange) -> String {
    var s = ""
    for b in p[r.start..<r.end] { s.unicodeScalars.append(Unicode.Scalar(b >= 0x41 && b <= 0x5A ? b | 0x20 : b)) }
    return s
}

/// The bytes of `r` in `p`.
public func bytes(_ p: UnsafeRawBufferPointer, _ r: ByteRange) -> [UInt8] { Array(p[r.start..<r.end]) }
