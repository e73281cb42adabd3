import HTTP1
import Runtime

/// The header rewriter as public API, for the fuzz targets (Fuzz/FuzzHeadRewriter): they are
/// executables built with optimisation, where `@testable import` is not available. Each function
/// only forwards to `HeadRewriter`; the proxy itself calls `HeadRewriter` directly.
public enum HeadRewriterEntry {
    /// The request head sent to a backend (see `HeadRewriter.request`). `subjectName` (lowercase)
    /// and `subjectLine` stand for a listener that forwards the verified client certificate.
    public static func request(_ iov: IOVecList, _ p: UnsafeRawPointer, _ head: MessageHead, peer: UnsafeRawBufferPointer,
                               hostLine: UnsafeRawBufferPointer, tls: Bool,
                               subjectName: UnsafeRawBufferPointer? = nil, subjectLine: UnsafeRawBufferPointer? = nil,
                               requestIDLine: UnsafeRawBufferPointer? = nil) {
        let facts = HeadRewriter.ClientFacts(tls: tls, subjectLine: subjectLine, subjectName: subjectName, requestIDLine: requestIDLine)
        HeadRewriter.request(iov, p, head, peer: peer, hostLine: hostLine, client: facts)
    }

    /// Whether the proxy refuses the request before rewriting it because it names the subject
    /// header in Connection or spells it alike (see `HeadRewriter.spoofsClientSubject`).
    public static func spoofsClientSubject(_ p: UnsafeRawPointer, _ head: MessageHead, _ subjectName: UnsafeRawBufferPointer) -> Bool {
        HeadRewriter.spoofsClientSubject(p, head, subjectName)
    }

    /// The response head sent to a client (see `HeadRewriter.response`).
    public static func response(_ iov: IOVecList, _ p: UnsafeRawPointer, _ head: MessageHead, close: Bool, keepAlive10: Bool, dechunk: Bool) {
        HeadRewriter.response(iov, p, head, close: close, keepAlive10: keepAlive10, dechunk: dechunk)
    }
}
