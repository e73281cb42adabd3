import HTTP1

/// Everything a parsed head says, as a value that can be compared: spans, derived semantics and
/// each field with its kind.
public struct HeadSnapshot: Equatable {
    public struct Field: Equatable {
        public var name: ByteRange
        public var value: ByteRange
        public var kind: HeaderKind
        public var namedByConnection: Bool
        public var dropped: Bool
    }

    public var method, target, reason: ByteRange
    public var methodKind: Method
    public var status, versionMinor, start, end: Int
    public var fields: [Field]
    public var contentLength: UInt64?
    public var chunked, otherTransferCoding, keepAlive, expectContinue, upgrade, ambiguous: Bool
    public var transferEncodingLines: Int
    public var host, targetAuthority: ByteRange?
    public var targetPath: ByteRange

    public init(_ h: MessageHead) {
        method = h.method
        target = h.target
        reason = h.reason
        methodKind = h.methodKind
        status = h.status
        versionMinor = h.versionMinor
        start = h.start
        end = h.end
        fields = h.headers.map { Field(name: $0.name, value: $0.value, kind: $0.kind, namedByConnection: $0.namedByConnection, dropped: $0.dropped) }
        contentLength = h.contentLength
        chunked = h.chunked
        otherTransferCoding = h.otherTransferCoding
        keepAlive = h.keepAlive
        expectContinue = h.expectContinue
        upgrade = h.upgrade
        ambiguous = h.ambiguous
        transferEncodingLines = h.transferEncodingLines
        host = h.host
        targetAuthority = h.targetAuthority
        targetPath = h.targetPath
    }
}

/// What a head parser made of an input: the verdict a proxy acts on.
public enum HeadVerdict: Equatable {
    case needMore
    case complete(HeadSnapshot)
    /// Refused, with the status the proxy answers (400, 414, 431, ...). The reason text may differ
    /// with the split (a bare CR seen in an unfinished line, or in the whole line), the status not.
    case error(status: Int)
}

public enum HeadFeeder {
    /// Feeds `bytes` to a new parser in pieces ending at `cuts`, as the proxy does: each call sees
    /// all bytes received so far (in an allocation of exactly that size). Returns the first verdict
    /// that is not `.needMore`, and the head it parsed.
    public static func feed(_ kind: HeadParser.Kind, _ limits: HeadLimits, _ bytes: UnsafeRawBufferPointer, cuts: [Int]) -> (HeadVerdict, MessageHead?) {
        var parser = HeadParser(kind: kind, limits: limits)
        for cut in cuts where cut > 0 {
            let r = Pieces.withExactCopy(bytes, cut) { parser.parse($0) }
            switch r {
            case .needMore: continue
            case .error(let e): return (.error(status: e.status), nil)
            case .complete:
                checkSpans(parser.head, cut, bytes)
                return (.complete(HeadSnapshot(parser.head)), parser.head)
            }
        }
        return (.needMore, nil)
    }

    /// Feeds the input every way `Pieces` gives and traps unless all ways agree. Returns the verdict
    /// and the head of the whole input. `compareStatus: false` counts every refusal as the same
    /// verdict: a refused response is a 502 to the client, whatever the parser's reason.
    public static func agreeing(_ kind: HeadParser.Kind, _ limits: HeadLimits, _ bytes: UnsafeRawBufferPointer,
                                bytewise: Bool = true, compareStatus: Bool = true) -> (HeadVerdict, MessageHead?) {
        func verdict(_ v: HeadVerdict) -> HeadVerdict {
            if case .error = v, !compareStatus { return .error(status: 502) }
            return v
        }
        let ways = Pieces.cuts(bytes, bytewise: bytewise)
        let whole = feed(kind, limits, bytes, cuts: ways[0])
        for cuts in ways.dropFirst() {
            let v = feed(kind, limits, bytes, cuts: cuts).0
            require(verdict(v) == verdict(whole.0), "\(kind) verdict depends on the split: whole \(brief(whole.0)), in pieces ending at \(cuts.count > 8 ? "every byte" : "\(cuts)") \(brief(v)); input \"\(quoted(bytes))\"")
        }
        return whole
    }

    static func brief(_ v: HeadVerdict) -> String {
        switch v {
        case .needMore: return "needMore"
        case .error(let s): return "error \(s)"
        case .complete(let h): return "complete (end \(h.end), \(h.fields.count) fields, keepAlive \(h.keepAlive), CL \(h.contentLength.map(String.init) ?? "-"), chunked \(h.chunked))"
        }
    }

    /// Every span of a complete head lies inside it, and the head inside what was received.
    static func checkSpans(_ h: MessageHead, _ received: Int, _ bytes: UnsafeRawBufferPointer) {
        func inside(_ r: ByteRange) -> Bool { r.count == 0 || (r.start >= h.start && r.count > 0 && r.end <= h.end) }
        require(h.start >= 0 && h.start < h.end && h.end <= received, "head spans \(h.start)..<\(h.end) of \(received) bytes")
        require(inside(h.method) && inside(h.target) && inside(h.reason), "request or status line span outside the head")
        require(h.host.map(inside) ?? true, "Host span outside the head")
        for f in h.headers { require(inside(f.name) && inside(f.value) && f.name.count > 0, "field span outside the head") }
    }
}
