import HTTP1
import Runtime

/// Writes the head sent to the other side as a gather list of spans of the received head plus the
/// lines the proxy adds: no copy, no allocation. Hop-by-hop headers (RFC 9110 §7.6.1) and those the
/// Connection header names are left out.
enum HeadRewriter {
    /// The line of field `f` including its CRLF, when nothing follows the trimmed value but CRLF,
    /// so consecutive kept lines merge into one span.
    @inline(__always)
    static func addField(_ iov: IOVecList, _ p: UnsafeRawPointer, _ f: HeaderField) {
        let end = f.value.end
        if p.load(fromByteOffset: end, as: UInt8.self) == 0x0D {
            iov.add(p + f.name.start, end + 2 - f.name.start)
        } else {
            iov.add(p + f.name.start, end - f.name.start)
            iov.add("\r\n")
        }
    }

    /// A Transfer-Encoding list that came in several lines, as one line (in its order), so a
    /// backend or client that reads only one of the lines cannot frame otherwise.
    static func addTransferEncoding(_ iov: IOVecList, _ p: UnsafeRawPointer, _ head: MessageHead) {
        iov.add("Transfer-Encoding: ")
        var first = true
        for f in head.headers where f.kind == .transferEncoding {
            if !first { iov.add(", ") }
            iov.add(p + f.value.start, f.value.count)
            first = false
        }
        iov.add("\r\n")
    }

    /// What the proxy itself vouches for about the client, beyond its address.
    struct ClientFacts {
        /// The client spoke TLS to us (X-Forwarded-Proto: https).
        var tls = false
        /// A header line the proxy sets ("Name: value\r\n") and the name (lowercase) of the header
        /// a client must not send itself: the verified client certificate's subject.
        var subjectLine: UnsafeRawBufferPointer?
        var subjectName: UnsafeRawBufferPointer?
        /// "X-Request-ID: id\r\n" sent in place of every X-Request-ID the client sent (nil with
        /// `request_id off`: the client's pass through as they came).
        var requestIDLine: UnsafeRawBufferPointer?
    }

    /// Whether field `f` is named `lower` (ASCII, lowercase), ignoring case.
    static func named(_ p: UnsafeRawPointer, _ f: HeaderField, _ lower: UnsafeRawBufferPointer) -> Bool {
        guard f.name.count == lower.count else { return false }
        for i in 0..<lower.count where p.load(fromByteOffset: f.name.start + i, as: UInt8.self) | 0x20 != lower[i] | 0x20 { return false }
        return true
    }

    /// Whether the request tries to pass as the client-certificate subject header `lower` (the
    /// configured name, lowercase), which only the proxy may set: a `Connection` option naming it
    /// (a backend honouring it would drop the proxy's line), or a field whose name reads as it to
    /// a lenient server without being it (`X_Client_Subject` when the header is X-Client-Subject;
    /// the exact name is simply left out by `request`). Such a request is answered 400.
    static func spoofsClientSubject(_ p: UnsafeRawPointer, _ head: MessageHead, _ lower: UnsafeRawBufferPointer) -> Bool {
        let buf = UnsafeRawBufferPointer(start: p, count: head.end)
        for f in head.headers {
            if f.kind == .connection {
                var s = f.value.start
                while s < f.value.end {
                    var e = s
                    while e < f.value.end && buf[e] != UInt8(ascii: ",") { e += 1 }
                    var a = s, b = e
                    while a < b && (buf[a] == 0x20 || buf[a] == 0x09) { a += 1 }
                    while b > a && (buf[b - 1] == 0x20 || buf[b - 1] == 0x09) { b -= 1 }
                    if b > a && FieldName.readsAs(buf, ByteRange(start: a, count: b - a), lower) { return true }
                    s = e + 1
                }
            } else if f.kind == .other && !named(p, f, lower) && FieldName.readsAs(buf, f.name, lower) {
                return true
            }
        }
        return false
    }

    /// The request line: origin-form as received, or for an absolute-form target the part after
    /// the authority ("/" when the path is empty), as RFC 9112 §3.2.2 has a proxy forward it.
    @inline(__always)
    static func requestLine(_ iov: IOVecList, _ p: UnsafeRawPointer, _ head: borrowing MessageHead) {
        if head.targetAuthority == nil {
            iov.add(p + head.method.start, head.target.end - head.method.start)
        } else {
            iov.add(p + head.method.start, head.target.start - head.method.start)
            let path = head.targetPath
            if path.count == 0 || p.load(fromByteOffset: path.start, as: UInt8.self) == UInt8(ascii: "?") { iov.add("/") }
            iov.add(p + path.start, path.count)
        }
        iov.add(" HTTP/1.1\r\n")
    }

    /// The request to a backend: always HTTP/1.1 keep-alive, with X-Forwarded-For/-Proto/-Host.
    /// An absolute-form target's authority is sent as Host in place of the client's.
    static func request(_ iov: IOVecList, _ p: UnsafeRawPointer, _ head: borrowing MessageHead, peer: UnsafeRawBufferPointer,
                        hostLine: UnsafeRawBufferPointer, client: ClientFacts = ClientFacts()) {
        requestLine(iov, p, head)
        var sawXFF = false
        for f in head.headers {
            switch f.kind {
            case .xForwardedFor:
                sawXFF = true
            case .xForwardedProto, .xForwardedHost, .expect:
                continue
            case .xRequestID where client.requestIDLine != nil, .xRequestIDLookalike where client.requestIDLine != nil:
                continue
            case .host where head.targetAuthority != nil:
                continue
            case .transferEncoding where head.transferEncodingLines > 1:
                if !f.dropped { addTransferEncoding(iov, p, head) }
            case .upgrade where head.wantsTunnel:
                addField(iov, p, f)  // the protocols offered, for a backend that may answer 101
            default:
                if f.kind.isHopByHop || f.namedByConnection || f.dropped { continue }
                if let n = client.subjectName, f.kind == .other, named(p, f, n) { continue }  // only we say who the client is
                addField(iov, p, f)
            }
        }
        if let a = head.targetAuthority {
            iov.add("Host: ")
            iov.add(p + a.start, a.count)
            iov.add("\r\n")
        }
        iov.add("X-Forwarded-For: ")
        if sawXFF {
            for f in head.headers where f.kind == .xForwardedFor {
                iov.add(p + f.value.start, f.value.count)
                iov.add(", ")
            }
        }
        iov.add(peer)
        iov.add(client.tls ? "\r\nX-Forwarded-Proto: https\r\n" : "\r\nX-Forwarded-Proto: http\r\n")
        if let line = client.subjectLine { iov.add(line) }
        if let line = client.requestIDLine { iov.add(line) }
        if head.ambiguous { iov.add("Connection: close\r\n") } else if head.wantsTunnel { iov.add("Connection: upgrade\r\n") }
        if let h = head.host {
            iov.add("X-Forwarded-Host: ")
            iov.add(p + h.start, h.count)
            iov.add("\r\n")
        } else {
            iov.add(hostLine)
        }
        iov.add("\r\n")
    }

    /// The response to a client. `close`: tell the client this connection ends; `keepAlive10`: an
    /// HTTP/1.0 client keeps it; `dechunk`: the body is sent decoded (HTTP/1.0 client), so no
    /// Transfer-Encoding.
    /// `switching`: a 101 that starts a tunnel the client asked for, whose Upgrade field (the
    /// protocol chosen) goes on with `Connection: upgrade`.
    static func response(_ iov: IOVecList, _ p: UnsafeRawPointer, _ head: borrowing MessageHead, close: Bool, keepAlive10: Bool, dechunk: Bool, switching: Bool = false) {
        let lineEnd = head.headers.first?.name.start ?? (head.end - 2)
        if head.versionMinor == 1 {
            iov.add(p + head.start, lineEnd - head.start)
        } else {
            iov.add("HTTP/1.1")
            iov.add(p + head.start + 8, lineEnd - head.start - 8)
        }
        // A 1xx, 204 or 304 response has no body whatever its fields say (RFC 9112 §6.3); the
        // framing fields a server must not send with it (RFC 9110 §8.6, RFC 9112 §6.1) are not
        // passed on for a client to misread.
        let status = head.status
        let dropTE = dechunk || status < 200 || status == 204 || status == 304
        let dropCL = status < 200 || status == 204
        for f in head.headers {
            if switching && f.kind == .upgrade {
                addField(iov, p, f)
                continue
            }
            if f.kind.isHopByHop || f.namedByConnection || f.dropped { continue }
            if dropTE && f.kind == .transferEncoding || dropCL && f.kind == .contentLength { continue }
            if f.kind == .transferEncoding && head.transferEncodingLines > 1 { addTransferEncoding(iov, p, head); continue }
            addField(iov, p, f)
        }
        if switching {
            iov.add("Connection: upgrade\r\n")
        } else if close {
            iov.add("Connection: close\r\n")
        } else if keepAlive10 {
            iov.add("Connection: keep-alive\r\n")
        }
        iov.add("\r\n")
    }
}
