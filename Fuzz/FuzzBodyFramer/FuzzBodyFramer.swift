import FuzzSupport
import HTTP1

/// Fuzz target: the body framer, in every framing. The input's first line chooses the framing
/// ("l<digits>" fixed length, "u" until close, "n" none, "t<digits>" chunked with that trailer
/// limit, anything else chunked) and the rest is the body stream. Decoding with `next` and
/// forwarding with `scan`, whole or in pieces, must agree; a fixed length or a close-delimited body
/// must hand over its bytes exactly, and a chunked body the framer accepts must decode the same in
/// a lenient reference decoder.
func check(_ input: UnsafeRawBufferPointer) {
    let (framer, bytes) = spec(input)
    let ways = Pieces.cuts(bytes)
    let whole = BodyRun.decode(framer, bytes, cuts: ways[0])
    for cuts in ways {
        let d = BodyRun.decode(framer, bytes, cuts: cuts)
        let s = BodyRun.scan(framer, bytes, cuts: cuts)
        let label = cuts.count > 8 ? "byte by byte" : "in pieces ending at \(cuts)"
        require(comparable(d) == comparable(whole), "\(framer.framing) decode \(label) gives \(d), whole \(whole); input \"\(quoted(input))\"")
        require(comparable(s, payload: false) == comparable(whole, payload: false), "\(framer.framing) scan \(label) gives \(s), decode \(whole); input \"\(quoted(input))\"")
    }
    switch framer.framing {
    case .none:
        require(whole.end == .complete && whole.consumed == 0 && whole.payload.isEmpty, "empty body used input")
    case .length(let n):
        let take = Int(min(n, UInt64(bytes.count)))
        require(whole.payload.elementsEqual(bytes[0..<take]) && whole.consumed == take, "fixed-length body is not the next \(n) bytes")
        require((whole.end == .complete) == (UInt64(bytes.count) >= n), "fixed-length body of \(n) ended wrongly: \(whole.end)")
    case .untilClose:
        require(whole.end == .needMore && whole.payload.elementsEqual(bytes) && whole.consumed == bytes.count, "close-delimited body is not all the bytes")
        var f = framer
        require(f.eof(), "close-delimited body refused its close")
    case .chunked:
        if whole.end == .complete {
            let ref = lenientChunked(UnsafeRawBufferPointer(rebasing: bytes[0..<whole.consumed]))
            require(ref != nil && ref!.payload == whole.payload && ref!.used == whole.consumed, "chunked body accepted by the framer decodes differently in the reference: \(String(describing: ref?.used)) used; input \"\(quoted(input))\"")
        }
    }
}

/// The run with what may legitimately differ between feeds removed: how far an error was seen.
func comparable(_ r: BodyRun, payload: Bool = true) -> BodyRun {
    var c = r
    if case .error = r.end { c.consumed = -1 }
    if !payload { c.payload = [] }
    return c
}

/// Splits the input into the framer its first line asks for and the body bytes after it.
func spec(_ input: UnsafeRawBufferPointer) -> (BodyFramer, UnsafeRawBufferPointer) {
    guard let nl = input.prefix(24).firstIndex(of: 0x0A) else { return (BodyFramer(.chunked), input) }
    let line = input[0..<nl]
    let rest = UnsafeRawBufferPointer(rebasing: input[(nl + 1)...])
    var digits: UInt64 = 0
    for b in line.dropFirst().prefix(18) where b >= 0x30 && b <= 0x39 { digits = digits * 10 + UInt64(b - 0x30) }
    switch line.first {
    case UInt8(ascii: "l"): return (BodyFramer(.length(digits)), rest)
    case UInt8(ascii: "u"): return (BodyFramer(.untilClose), rest)
    case UInt8(ascii: "n"): return (BodyFramer(.none), rest)
    case UInt8(ascii: "t"):
        var f = BodyFramer(.chunked)
        f.maxTrailerBytes = Int(digits % 10_000)
        return (f, rest)
    default: return (BodyFramer(.chunked), rest)
    }
}

/// A forgiving chunked decoder (any hex size, extensions skipped to the line end, trailers skipped
/// to the empty line). On a body the strict framer accepted it must find the same payload and end.
func lenientChunked(_ b: UnsafeRawBufferPointer) -> (payload: [UInt8], used: Int)? {
    var i = 0
    var payload: [UInt8] = []
    func skipLine() -> Bool {
        while i < b.count && b[i] != 0x0A { i += 1 }
        guard i < b.count else { return false }
        i += 1
        return true
    }
    while true {
        var size: UInt64 = 0
        var digits = 0
        while i < b.count, let v = hex(b[i]) { size = size &* 16 &+ UInt64(v); digits += 1; i += 1 }
        guard digits > 0, skipLine() else { return nil }
        if size == 0 { break }
        guard size <= UInt64(b.count - i) else { return nil }
        payload += b[i..<(i + Int(size))]
        i += Int(size)
        guard i + 1 < b.count, b[i] == 0x0D, b[i + 1] == 0x0A else { return nil }
        i += 2
    }
    while true {
        let lineStart = i
        guard skipLine() else { return nil }
        if i - lineStart <= 2 { return (payload, i) }
    }
}

func hex(_ c: UInt8) -> UInt8? {
    switch c {
    case 0x30...0x39: return c - 0x30
    case 0x41...0x46: return c - 0x41 + 10
    case 0x61...0x66: return c - 0x61 + 10
    default: return nil
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    check(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

#if !FUZZING
@main enum Main { static func main() { Replay.main(check) } }
#endif
