import FuzzSupport
import HTTP1

/// Fuzz target: the request head parser. Any bytes must give a verdict (never a crash or a read
/// past what was received), and the same verdict and head whether they arrive whole, in two or
/// three pieces, or a byte at a time. Limits are small so that 414 and 431 are reached.
func check(_ bytes: UnsafeRawBufferPointer) {
    let limits = HeadLimits(maxHeadBytes: 2048, maxTargetBytes: 512, maxHeaders: 24)
    let (verdict, head) = HeadFeeder.agreeing(.request, limits, bytes)
    guard case .complete = verdict, let h = head else { return }
    require(h.versionMinor <= 1 && h.status == 0, "request head with a status or a version past 1.1")
    require(!(h.chunked && h.contentLength != nil), "request framed by both Content-Length and chunked")
    require(h.versionMinor == 0 || h.host != nil, "HTTP/1.1 request without Host")
    require(h.headers.count <= limits.maxHeaders && h.end - h.start <= limits.maxHeadBytes, "request over its limits was accepted")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    check(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

#if !FUZZING
@main enum Main { static func main() { Replay.main(check) } }
#endif
