import FuzzSupport
import HTTP1

/// Fuzz target: the response head parser, with the framing a proxy derives from the head for each
/// kind of request. Whole, split and byte-by-byte feeds must agree (on whether the head is refused;
/// the reason does not matter, as a refused response is a 502 either way).
func check(_ bytes: UnsafeRawBufferPointer) {
    let limits = HeadLimits(maxHeadBytes: 2048, maxTargetBytes: 512, maxHeaders: 24)
    let (verdict, head) = HeadFeeder.agreeing(.response, limits, bytes, compareStatus: false)
    guard case .complete = verdict, let h = head else { return }
    require(h.status >= 100 && h.status <= 999 && h.versionMinor <= 1, "status \(h.status) or version 1.\(h.versionMinor) accepted")
    for method in [Method.get, .head, .post] {
        let framing = h.responseFraming(requestMethod: method)
        if method == .head || h.status < 200 || h.status == 204 || h.status == 304 {
            require(framing == .none, "\(method) \(h.status) response with a body (\(framing))")
        }
        if h.chunked { require(h.contentLength == nil, "chunked response still carries a Content-Length") }
        if case .length(let n) = framing { require(n == h.contentLength && !h.chunked, "length framing without its Content-Length") }
        if framing == .untilClose { require(!h.chunked, "chunked response read until close") }
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
