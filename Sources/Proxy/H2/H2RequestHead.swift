/// The HTTP/1.1 request head an HTTP/2 request stands for, built field by field as HPACK decodes
/// them (RFC 9113 §8.3): `:method`, `:path` and `:authority` make the request line and Host;
/// cookies split across fields are joined with "; " (§8.2.3); a body without content-length is sent
/// chunked. The result then goes through the same parser and rewriter as an HTTP/1.1 request, so
/// what reaches the backend is checked and framed exactly as for HTTP/1.1 clients.
///
/// nghttp2 has already refused what RFC 9113 forbids (uppercase names, connection-specific fields,
/// `te` other than trailers, pseudo-fields after regular ones, repeated or missing pseudo-fields,
/// CR, LF or NUL in values).
public struct H2RequestHead: Sendable {
    public private(set) var method: [UInt8] = []
    public private(set) var path: [UInt8] = []
    public private(set) var authority: [UInt8] = []
    private var host: [UInt8] = []
    private var fields: [UInt8] = []
    private var cookies: [UInt8] = []
    public private(set) var hasContentLength = false
    /// Bytes of the field list so far, counted as SETTINGS_MAX_HEADER_LIST_SIZE counts them
    /// (name, value and 32 per field).
    public private(set) var listSize = 0
    public let maxListSize: Int
    /// The field list went past `maxListSize`: the request is answered 431.
    public private(set) var tooLarge = false

    public init(maxListSize: Int) {
        self.maxListSize = maxListSize
        fields.reserveCapacity(256)
    }

    /// Adds one field; false when it cannot be carried over HTTP/1.1 (the stream is refused).
    public mutating func add(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> Bool {
        listSize += name.count + value.count + 32
        if listSize > maxListSize { tooLarge = true }
        if tooLarge { return true }
        guard let first = name.first else { return false }
        if first == UInt8(ascii: ":") { return pseudo(name, value) }
        if Self.equals(name, "host") {
            host = Array(value)
        } else if Self.equals(name, "cookie") {
            if !cookies.isEmpty { cookies += [UInt8(ascii: ";"), 0x20] }
            cookies += value
        } else {
            if Self.equals(name, "content-length") { hasContentLength = true }
            fields += name
            fields += [UInt8(ascii: ":"), 0x20]
            fields += value
            fields += [13, 10]
        }
        return true
    }

    private mutating func pseudo(_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) -> Bool {
        if Self.equals(name, ":method") { method = Array(value) }
        else if Self.equals(name, ":path") { path = Array(value) }
        else if Self.equals(name, ":authority") { authority = Array(value) }
        else if Self.equals(name, ":scheme") { return true }  // the proxy says how the client came (X-Forwarded-Proto)
        else { return false }  // :protocol (extended CONNECT) is not offered
        return true
    }

    /// The head, given whether the request ends with it (no body follows). Nil when a request line
    /// cannot be made (CONNECT without a path, no host at all).
    public func http1(bodyFollows: Bool) -> (head: [UInt8], chunked: Bool)? {
        guard !method.isEmpty, !path.isEmpty else { return nil }
        let hostValue = authority.isEmpty ? host : authority
        guard !hostValue.isEmpty else { return nil }
        // RFC 9113 §8.3.1: a Host naming another entity than :authority makes the request malformed.
        if !authority.isEmpty && !host.isEmpty && host.map(Self.lower) != authority.map(Self.lower) { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(method.count + path.count + hostValue.count + fields.count + cookies.count + 64)
        out += method
        out.append(0x20)
        out += path
        out += Array(" HTTP/1.1\r\nHost: ".utf8)
        out += hostValue
        out += [13, 10]
        out += fields
        if !cookies.isEmpty {
            out += Array("Cookie: ".utf8)
            out += cookies
            out += [13, 10]
        }
        let chunked = bodyFollows && !hasContentLength
        if chunked { out += Array("Transfer-Encoding: chunked\r\n".utf8) }
        out += [13, 10]
        return (out, chunked)
    }

    private static func lower(_ b: UInt8) -> UInt8 { b >= 65 && b <= 90 ? b | 0x20 : b }

    private static func equals(_ a: UnsafeRawBufferPointer, _ s: StaticString) -> Bool {
        guard a.count == s.utf8CodeUnitCount else { return false }
        for i in 0..<a.count where a[i] != s.utf8Start[i] { return false }
        return true
    }
}
