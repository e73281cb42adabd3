/// The HTTP/1.1 request head an HTTP/2 request stands for, built field by field as HPACK decodes
/// them (RFC 9113 §8.3): `:method`, `:path` and `:authority` make the request line and Host;
/// cookies split across fields are joined with "; " (§8.2.3); a body without content-length is sent
/// chunked. The result then goes through the same parser and rewriter as an HTTP/1.1 request, so
/// what reaches the backend is checked and framed exactly as for HTTP/1.1 clients.
///
/// nghttp2 has already refused what RFC 9113 forbids (uppercase names, connection-specific fields,
/// `te` other than trailers, pseudo-fields after regular ones, repeated or missing pseudo-fields,
/// CR, LF or NUL in values). Reused from stream to stream: `reset` keeps the storage.
public struct H2RequestHead: Sendable {
    private var method: [UInt8] = []
    private var path: [UInt8] = []
    private var authority: [UInt8] = []
    private var host: [UInt8] = []
    /// Regular fields as HTTP/1.1 lines ("name: value\r\n"), in order.
    private var fields: [UInt8] = []
    private var cookies: [UInt8] = []
    public private(set) var hasContentLength = false
    private var otherScheme = false
    /// Bytes of the field list so far, counted as SETTINGS_MAX_HEADER_LIST_SIZE counts them
    /// (name, value and 32 per field).
    public private(set) var listSize = 0
    public let maxListSize: Int
    /// The field list went past `maxListSize`: the request is answered 431.
    public private(set) var tooLarge = false

    public init(maxListSize: Int) {
        self.maxListSize = maxListSize
        fields.reserveCapacity(512)
    }

    public mutating func reset() {
        method.removeAll(keepingCapacity: true)
        path.removeAll(keepingCapacity: true)
        authority.removeAll(keepingCapacity: true)
        host.removeAll(keepingCapacity: true)
        fields.removeAll(keepingCapacity: true)
        cookies.removeAll(keepingCapacity: true)
        hasContentLength = false
        otherScheme = false
        listSize = 0
        tooLarge = false
    }

    /// Adds one field; false when it cannot be carried over HTTP/1.1 (the stream is refused).
    public mutating func add(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> Bool {
        listSize += name.count + value.count + 32
        if listSize > maxListSize { tooLarge = true }
        if tooLarge { return true }
        guard let first = name.first else { return false }
        if first == UInt8(ascii: ":") { return pseudo(name, value) }
        if Self.equals(name, "host") {
            host.removeAll(keepingCapacity: true)
            host.append(contentsOf: value)
        } else if Self.equals(name, "cookie") {
            if !cookies.isEmpty { cookies.append(contentsOf: [UInt8(ascii: ";"), 0x20]) }
            cookies.append(contentsOf: value)
        } else {
            if Self.equals(name, "content-length") { hasContentLength = true }
            fields.append(contentsOf: name)
            fields.append(UInt8(ascii: ":"))
            fields.append(0x20)
            fields.append(contentsOf: value)
            fields.append(13)
            fields.append(10)
        }
        return true
    }

    private mutating func pseudo(_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) -> Bool {
        if Self.equals(name, ":method") { method.append(contentsOf: value) }
        else if Self.equals(name, ":path") { path.append(contentsOf: value) }
        else if Self.equals(name, ":authority") { authority.append(contentsOf: value) }
        else if Self.equals(name, ":scheme") {
            // Only http and https: with another scheme nghttp2 lets any :path through, and an
            // absolute-form one would name a host past the :authority check. (The proxy says how
            // the client came in X-Forwarded-Proto.)
            otherScheme = !(Self.equals(value, "https") || Self.equals(value, "http"))
        }
        else { return false }  // :protocol (extended CONNECT) is not offered
        return true
    }

    /// Why no head could be made.
    public enum Refusal: Error, Equatable {
        /// No request line or host can be made, or Host names another entity than :authority (400).
        case malformed
        /// It does not fit (431).
        case tooLarge
    }

    /// Writes the head into `out`, given whether a body follows: its length, and whether the body
    /// goes chunked.
    public func write(into out: UnsafeMutableRawBufferPointer, bodyFollows: Bool) -> Result<(count: Int, chunked: Bool), Refusal> {
        guard !method.isEmpty, !path.isEmpty, !otherScheme else { return .failure(.malformed) }
        // Origin form, or `*` for OPTIONS (RFC 9113 §8.3.1): never a form that names a host.
        let isOptions = method.count == 7 && method.elementsEqual("OPTIONS".utf8)
        guard path[0] == UInt8(ascii: "/") || (isOptions && path.count == 1 && path[0] == UInt8(ascii: "*")) else { return .failure(.malformed) }
        let hostValue = authority.isEmpty ? host : authority
        guard !hostValue.isEmpty else { return .failure(.malformed) }
        // RFC 9113 §8.3.1: a Host naming another entity than :authority makes the request malformed.
        if !authority.isEmpty && !host.isEmpty && !Self.sameIgnoringCase(host, authority) { return .failure(.malformed) }
        let chunked = bodyFollows && !hasContentLength
        var w = Writer(out: out)
        w.put(method)
        w.put(" ")
        w.put(path)
        w.put(" HTTP/1.1\r\nHost: ")
        w.put(hostValue)
        w.put("\r\n")
        w.put(fields)
        if !cookies.isEmpty {
            w.put("Cookie: ")
            w.put(cookies)
            w.put("\r\n")
        }
        if chunked { w.put("Transfer-Encoding: chunked\r\n") }
        w.put("\r\n")
        return w.overflow ? .failure(.tooLarge) : .success((w.count, chunked))
    }

    /// The head as bytes (for tests).
    public func http1(bodyFollows: Bool) -> (head: [UInt8], chunked: Bool)? {
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 1)
        defer { buf.deallocate() }
        guard case .success(let r) = write(into: buf, bodyFollows: bodyFollows) else { return nil }
        return (Array(buf[0..<r.count]), r.chunked)
    }

    private struct Writer {
        let out: UnsafeMutableRawBufferPointer
        var count = 0
        var overflow = false

        mutating func put(_ bytes: [UInt8]) {
            bytes.withUnsafeBytes { put($0) }
        }

        mutating func put(_ s: StaticString) {
            put(UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
        }

        mutating func put(_ b: UnsafeRawBufferPointer) {
            guard !overflow, b.count <= out.count - count else {
                overflow = true
                return
            }
            if b.count > 0 { (out.baseAddress! + count).copyMemory(from: b.baseAddress!, byteCount: b.count) }
            count += b.count
        }
    }

    private static func sameIgnoringCase(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { x, y in lower(x) == lower(y) }
    }

    private static func lower(_ b: UInt8) -> UInt8 { b >= 65 && b <= 90 ? b | 0x20 : b }

    private static func equals(_ a: UnsafeRawBufferPointer, _ s: StaticString) -> Bool {
        guard a.count == s.utf8CodeUnitCount else { return false }
        for i in 0..<a.count where a[i] != s.utf8Start[i] { return false }
        return true
    }
}
