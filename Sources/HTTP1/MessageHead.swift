/// A parsed request or response head. All text is spans into the buffer the head was parsed
/// from; the header array is reused across messages so steady-state parsing allocates nothing.
public struct MessageHead: Sendable {
    // Request line.
    public var method = ByteRange(start: 0, count: 0)
    public var methodKind: Method = .other
    public var target = ByteRange(start: 0, count: 0)
    /// For an absolute-form target (`http://a:8080/p?q`): its authority (`a:8080`), which is then
    /// also `host` (RFC 9112 §3.2.2), and what follows it (`/p?q`; empty or starting with '?'
    /// when the path is empty). Nil for every other form.
    public var targetAuthority: ByteRange?
    public var targetPath = ByteRange(start: 0, count: 0)
    // Status line.
    public var status = 0
    public var reason = ByteRange(start: 0, count: 0)

    public var versionMinor = 1
    public var headers: [HeaderField] = []
    /// Offset where the head starts (after ignored leading CRLFs) and where it ends (after the blank line).
    public var start = 0
    public var end = 0

    // Semantics derived from the headers.
    public var contentLength: UInt64?
    public var chunked = false
    /// Transfer-Encoding present but not ending in chunked (responses only: body runs to close).
    public var otherTransferCoding = false
    /// How many Transfer-Encoding lines the list came in (forwarded as one line).
    public var transferEncodingLines = 0
    /// Forwarded, but a backend could read it otherwise (Content-Length repeated, a body on GET or
    /// HEAD): the connections on both sides close after the exchange.
    public var ambiguous = false
    public var keepAlive = true
    public var expectContinue = false
    public var host: ByteRange?
    /// `Connection: upgrade` was among the options.
    public var upgrade = false
    /// A request the proxy may turn into a tunnel if the backend answers 101 (RFC 9110 §7.8):
    /// `Connection: upgrade` with an `Upgrade` field, HTTP/1.1, no body, and no `h2c` offered
    /// (an h2c tunnel would hand the client an HTTP/2 connection to the backend, past the proxy).
    public var wantsTunnel = false

    public init() {
        headers.reserveCapacity(32)
    }

    /// Clears the head in place: the header array keeps its buffer (a copy made here would leave
    /// it shared, and the next append would allocate).
    mutating func reset() {
        method = ByteRange(start: 0, count: 0)
        methodKind = .other
        target = ByteRange(start: 0, count: 0)
        targetAuthority = nil
        targetPath = ByteRange(start: 0, count: 0)
        status = 0
        reason = ByteRange(start: 0, count: 0)
        versionMinor = 1
        headers.removeAll(keepingCapacity: true)
        start = 0
        end = 0
        contentLength = nil
        chunked = false
        otherTransferCoding = false
        transferEncodingLines = 0
        ambiguous = false
        keepAlive = true
        expectContinue = false
        host = nil
        upgrade = false
        wantsTunnel = false
    }
}

/// Methods the proxy treats specially; the rest are forwarded by their bytes.
public enum Method: UInt8, Sendable {
    case get, head, post, put, delete, options, trace, connect, patch, other

    /// RFC 9110 §9.2.2: safe to send twice.
    public var isIdempotent: Bool {
        switch self {
        case .get, .head, .put, .delete, .options, .trace: return true
        default: return false
        }
    }

    static func classify(_ buf: UnsafeRawBufferPointer, _ r: ByteRange) -> Method {
        func eq(_ s: StaticString) -> Bool {
            guard r.count == s.utf8CodeUnitCount else { return false }
            for i in 0..<r.count where buf[r.start + i] != s.utf8Start[i] { return false }
            return true
        }
        switch r.count {
        case 3: return eq("GET") ? .get : eq("PUT") ? .put : .other
        case 4: return eq("HEAD") ? .head : eq("POST") ? .post : .other
        case 5: return eq("PATCH") ? .patch : eq("TRACE") ? .trace : .other
        case 6: return eq("DELETE") ? .delete : .other
        case 7: return eq("OPTIONS") ? .options : eq("CONNECT") ? .connect : .other
        default: return .other
        }
    }
}
