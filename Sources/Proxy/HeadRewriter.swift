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

    /// What the proxy itself vouches for about the client, beyond its address.
    struct ClientFacts {
        /// The client spoke TLS to us (X-Forwarded-Proto: https).
        var tls = false
        /// A header line the proxy sets ("Name: value\r\n") and the name (lowercase) of the header
        /// a client must not send itself: the verified client certificate's subject.
        var subjectLine: UnsafeRawBufferPointer?
        var subjectName: UnsafeRawBufferPointer?
    }

    /// Whether field `f` is named `lower` (ASCII, lowercase), ignoring case.
    static func named(_ p: UnsafeRawPointer, _ f: HeaderField, _ lower: UnsafeRawBufferPointer) -> Bool {
        guard f.name.count == lower.count else { return false }
        for i in 0..<lower.count where p.load(fromByteOffset: f.name.start + i, as: UInt8.self) | 0x20 != lower[i] | 0x20 { return false }
        return true
    }

    /// The request to a backend: always HTTP/1.1 keep-alive, with X-Forwarded-For/-Proto/-Host.
    static func request(_ iov: IOVecList, _ p: UnsafeRawPointer, _ head: MessageHead, peer: UnsafeRawBufferPointer,
                        hostLine: UnsafeRawBufferPointer, client: ClientFacts = ClientFacts()) {
        iov.add(p + head.method.start, head.target.end - head.method.start)
        iov.add(" HTTP/1.1\r\n")
        var sawXFF = false
        for f in head.headers {
            switch f.kind {
            case .xForwardedFor:
                sawXFF = true
            case .xForwardedProto, .xForwardedHost, .expect:
                continue
            default:
                if f.kind.isHopByHop || f.namedByConnection { continue }
                if let n = client.subjectName, f.kind == .other, named(p, f, n) { continue }  // only we say who the client is
                addField(iov, p, f)
            }
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
    static func response(_ iov: IOVecList, _ p: UnsafeRawPointer, _ head: MessageHead, close: Bool, keepAlive10: Bool, dechunk: Bool) {
        let lineEnd = head.headers.first?.name.start ?? (head.end - 2)
        if head.versionMinor == 1 {
            iov.add(p + head.start, lineEnd - head.start)
        } else {
            iov.add("HTTP/1.1")
            iov.add(p + head.start + 8, lineEnd - head.start - 8)
        }
        for f in head.headers {
            if f.kind.isHopByHop || f.namedByConnection { continue }
            if dechunk && f.kind == .transferEncoding { continue }
            addField(iov, p, f)
        }
        if close { iov.add("Connection: close\r\n") } else if keepAlive10 { iov.add("Connection: keep-alive\r\n") }
        iov.add("\r\n")
    }
}
