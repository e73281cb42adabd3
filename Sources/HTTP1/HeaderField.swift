/// Header names the proxy acts on; everything else is `.other` and passes through.
public enum HeaderKind: UInt8, Sendable {
    case other
    case contentLength, transferEncoding, connection, host, keepAlive, te, trailer, upgrade
    case proxyConnection, expect, xForwardedFor, xForwardedProto, xForwardedHost
    /// X-Request-ID: passed on when valid, else replaced by the proxy's own (`request_id`).
    case xRequestID
    /// A name a lenient (CGI-style) server reads as X-Request-ID (`X_Request_ID`): left out
    /// wherever the proxy sets the id, or it would stand beside the proxy's in the backend's view.
    case xRequestIDLookalike
    /// A name that is not a framing or forwarding field but that a lenient server reads as one
    /// (`Transfer_Encoding`, `content--length`, `X-Forwarded-For_`): see `FieldName`.
    case smuggled

    /// Headers that describe one hop only (RFC 9110 §7.6.1) and are never forwarded as they are.
    public var isHopByHop: Bool {
        switch self {
        case .connection, .keepAlive, .te, .trailer, .upgrade, .proxyConnection: return true
        default: return false
        }
    }

    /// Exact names first, by length; only a name that is none of them is checked as a lookalike.
    static func classify(_ buf: UnsafeRawBufferPointer, _ name: ByteRange) -> HeaderKind {
        let kind = classifyExact(buf, name)
        if kind == .other && FieldName.isLookalike(buf, name) { return .smuggled }
        if kind == .other && name.count >= 12 && FieldName.mayReadAsX(buf, name) && FieldName.readsAs(buf, name, "x-request-id") {
            return .xRequestIDLookalike
        }
        return kind
    }

    @inline(__always)
    static func classifyExact(_ buf: UnsafeRawBufferPointer, _ name: ByteRange) -> HeaderKind {
        switch name.count {
        case 2: return buf.equalsLowercase(name, "te") ? .te : .other
        case 4: return buf.equalsLowercase(name, "host") ? .host : .other
        case 6: return buf.equalsLowercase(name, "expect") ? .expect : .other
        case 7:
            if buf.equalsLowercase(name, "trailer") { return .trailer }
            if buf.equalsLowercase(name, "upgrade") { return .upgrade }
            return .other
        case 12:  // as long as content-type: one byte first
            return buf[name.start] | 0x20 == UInt8(ascii: "x") && buf.equalsLowercase(name, "x-request-id") ? .xRequestID : .other
        case 10:
            if buf.equalsLowercase(name, "connection") { return .connection }
            if buf.equalsLowercase(name, "keep-alive") { return .keepAlive }
            return .other
        case 14: return buf.equalsLowercase(name, "content-length") ? .contentLength : .other
        case 15: return buf.equalsLowercase(name, "x-forwarded-for") ? .xForwardedFor : .other
        case 16:
            if buf.equalsLowercase(name, "proxy-connection") { return .proxyConnection }
            if buf.equalsLowercase(name, "x-forwarded-host") { return .xForwardedHost }
            return .other
        case 17:
            if buf.equalsLowercase(name, "transfer-encoding") { return .transferEncoding }
            if buf.equalsLowercase(name, "x-forwarded-proto") { return .xForwardedProto }
            return .other
        default: return .other
        }
    }
}

/// One header line, as spans of the head's bytes (no copies, no strings).
public struct HeaderField: Sendable {
    public var name: ByteRange
    public var value: ByteRange
    public var kind: HeaderKind
    /// Named by the Connection header, so hop-by-hop for this message.
    public var namedByConnection = false
    /// Not forwarded though end-to-end: a repeat of a Content-Length already forwarded, or a
    /// Content-Length that Transfer-Encoding overrides (RFC 9112 §6.3).
    public var dropped = false

    public init(name: ByteRange, value: ByteRange, kind: HeaderKind) {
        self.name = name
        self.value = value
        self.kind = kind
    }
}
