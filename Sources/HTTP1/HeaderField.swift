/// Header names the proxy acts on; everything else is `.other` and passes through.
public enum HeaderKind: UInt8, Sendable {
    case other
    case contentLength, transferEncoding, connection, host, keepAlive, te, trailer, upgrade
    case proxyConnection, expect, xForwardedFor, xForwardedProto, xForwardedHost
    /// A framing header spelled with '_' for '-': some servers fold it into the real one.
    case smuggled

    /// Headers that describe one hop only (RFC 9110 §7.6.1) and are never forwarded as they are.
    public var isHopByHop: Bool {
        switch self {
        case .connection, .keepAlive, .te, .trailer, .upgrade, .proxyConnection: return true
        default: return false
        }
    }

    static func classify(_ buf: UnsafeRawBufferPointer, _ name: ByteRange) -> HeaderKind {
        switch name.count {
        case 14 where buf.equalsLowercaseUnderscored(name, "content-length"): return .smuggled
        case 17 where buf.equalsLowercaseUnderscored(name, "transfer-encoding"): return .smuggled
        case 2: return buf.equalsLowercase(name, "te") ? .te : .other
        case 4: return buf.equalsLowercase(name, "host") ? .host : .other
        case 6: return buf.equalsLowercase(name, "expect") ? .expect : .other
        case 7:
            if buf.equalsLowercase(name, "trailer") { return .trailer }
            if buf.equalsLowercase(name, "upgrade") { return .upgrade }
            return .other
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
}
