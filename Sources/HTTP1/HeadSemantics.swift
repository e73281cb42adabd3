extension HeadParser {
    /// Derives framing and connection handling from the headers (RFC 9112 §6, §9; RFC 9110 §7.6.1),
    /// refusing every combination a backend could frame differently from us.
    mutating func applySemantics(_ buf: UnsafeRawBufferPointer) -> HeadResult {
        var sawTE = false
        var connectionClose = false
        var connectionKeepAlive = false
        var hosts = 0
        for idx in head.headers.indices {
            let f = head.headers[idx]
            switch f.kind {
            case .contentLength:
                // RFC 9110 §8.6: repeated lines of one value are one Content-Length; only the
                // first line goes on, and neither connection is reused after the exchange (a
                // backend that sums or rejects them would be out of step). A list in one line
                // ("5, 5", "5,5") is refused: it reads as 55 or 5 to a lenient parser.
                guard let v = digits(buf, f.value) else { return .error(.badRequest("bad Content-Length")) }
                if let existing = head.contentLength {
                    if existing != v { return .error(.badRequest("conflicting Content-Length")) }
                    head.headers[idx].dropped = true
                    head.ambiguous = true
                }
                head.contentLength = v
            case .transferEncoding:
                // Several lines are one list (RFC 9110 §5.3); they are forwarded as one line, since
                // a backend that reads only the first or the last line would frame otherwise.
                if sawTE { head.headers[idx].dropped = true }
                sawTE = true
                head.transferEncodingLines += 1
                guard transferCodings(buf, f.value) else { return .error(.badRequest("bad Transfer-Encoding")) }
            case .connection:
                if let e = connectionOptions(buf, f.value, &connectionClose, &connectionKeepAlive) { return .error(e) }
            case .smuggled:
                return .error(.badRequest("field name reads as a framing or forwarding field"))
            case .host:
                hosts += 1
                head.host = f.value
                if kind == .request && !HostValue.isValid(buf, f.value) { return .error(.badRequest("bad Host")) }
            case .expect where kind == .request:
                if buf.equalsLowercase(f.value, "100-continue") { head.expectContinue = true } else { return .error(.expectationFailed) }
            default:
                break
            }
        }
        if sawTE && head.otherTransferCoding && head.chunked {
            // e.g. "gzip, chunked": chunked is last, so framing is still chunked; gzip is content for us.
            head.otherTransferCoding = false
        }
        switch kind {
        case .request:
            if sawTE {
                if head.contentLength != nil { return .error(.badRequest("Content-Length with Transfer-Encoding")) }
                if head.versionMinor == 0 { return .error(.badRequest("Transfer-Encoding in HTTP/1.0")) }
                if !head.chunked { return .error(.notImplemented("unsupported transfer coding")) }
            }
            if hosts > 1 { return .error(.badRequest("duplicate Host")) }
            if head.versionMinor == 1 && hosts == 0 { return .error(.badRequest("missing Host")) }
            // A body on GET or HEAD has no defined meaning (RFC 9110 §9.3.1-2); some servers ignore
            // it and read it as the next request: forwarded, but neither connection is reused.
            if (head.methodKind == .get || head.methodKind == .head) && (head.chunked || (head.contentLength ?? 0) > 0) {
                head.ambiguous = true
            }
            // RFC 9112 §3.2.2: the absolute form's authority is the Host; the client's is replaced.
            if let a = head.targetAuthority { head.host = a }
            if head.methodKind == .connect { return .error(.notImplemented("CONNECT is not supported")) }
            head.wantsTunnel = head.upgrade && !head.ambiguous && head.versionMinor == 1 && !head.chunked && (head.contentLength ?? 0) == 0
                && offersTunnelProtocol(buf)
        case .response:
            if sawTE && head.contentLength != nil {
                // RFC 9112 §6.3: Transfer-Encoding wins, the Content-Length is removed before
                // forwarding, and the connection must not be reused.
                head.contentLength = nil
                for idx in head.headers.indices where head.headers[idx].kind == .contentLength { head.headers[idx].dropped = true }
                connectionClose = true
            }
        }
        if head.ambiguous { connectionClose = true }
        head.keepAlive = head.versionMinor == 1 ? !connectionClose : (connectionKeepAlive && !connectionClose)
        return .complete
    }

    /// Whether Upgrade fields are present and none offers `h2c` (RFC 9113 §3.1 dropped it; a
    /// backend that still speaks it would be reached past the proxy's HTTP/2 rules).
    private func offersTunnelProtocol(_ buf: UnsafeRawBufferPointer) -> Bool {
        var offered = false
        for f in head.headers where f.kind == .upgrade {
            var h2c = false
            forEachElement(buf, f.value) { tok in
                if tok.count > 0 { offered = true }
                // "h2c" or "h2c/anything": a protocol name is compared up to its version.
                if tok.count >= 3 && buf.equalsLowercase(ByteRange(start: tok.start, count: 3), "h2c")
                    && (tok.count == 3 || buf[tok.start + 3] == UInt8(ascii: "/")) { h2c = true }
            }
            if h2c { return false }
        }
        return offered
    }

    private func digits(_ buf: UnsafeRawBufferPointer, _ r: ByteRange) -> UInt64? {
        guard r.count > 0, r.count <= 18 else { return nil }
        var v: UInt64 = 0
        for k in 0..<r.count {
            let d = buf[r.start + k]
            guard d >= 0x30, d <= 0x39 else { return nil }
            v = v * 10 + UInt64(d - 0x30)
        }
        return v
    }

    /// Reads the codings of the Transfer-Encoding line into the head. Refuses an empty list, an
    /// empty element ("chunked, ", ", chunked", "gzip,,chunked": a backend that reads the list
    /// differently would frame differently, so we refuse rather than rewrite it), chunked twice,
    /// a coding after chunked, and a coding that only contains "chunked" ("xchunked",
    /// "chunked;q=1"), which a lenient reader takes for chunked where we do not.
    private mutating func transferCodings(_ buf: UnsafeRawBufferPointer, _ r: ByteRange) -> Bool {
        var ok = r.count > 0
        forEachElement(buf, r) { tok in
            if tok.count == 0 { ok = false; return }
            if head.chunked { ok = false }  // chunked twice, or a coding after chunked
            if buf.equalsLowercase(tok, "chunked") {
                head.chunked = true
            } else {
                if containsChunked(buf, tok) { ok = false }
                head.otherTransferCoding = true
            }
        }
        return ok
    }

    private func containsChunked(_ buf: UnsafeRawBufferPointer, _ r: ByteRange) -> Bool {
        guard r.count > 7 else { return false }
        for s in r.start...(r.end - 7) where buf.equalsLowercase(ByteRange(start: s, count: 7), "chunked") { return true }
        return false
    }

    /// Reads the options of one Connection line. Refuses an option that names a field a backend
    /// must see as sent (framing, Host) or one the proxy sets (X-Forwarded-*), or a lookalike of
    /// one: a backend that honours it drops that field, and the framing or the trust it carries
    /// is gone past the proxy.
    private mutating func connectionOptions(_ buf: UnsafeRawBufferPointer, _ r: ByteRange, _ close: inout Bool, _ keepAlive: inout Bool) -> HTTPError? {
        var error: HTTPError?
        forEachElement(buf, r) { tok in
            guard error == nil, tok.count > 0 else { return }
            for k in 0..<tok.count where !ByteClass.isToken(buf[tok.start + k]) {
                error = .badRequest("bad Connection header")
                return
            }
            if buf.equalsLowercase(tok, "close") { close = true; return }
            if buf.equalsLowercase(tok, "keep-alive") { keepAlive = true; return }
            if buf.equalsLowercase(tok, "upgrade") { head.upgrade = true; return }
            switch HeaderKind.classify(buf, tok) {
            case .contentLength, .transferEncoding, .host, .xForwardedFor, .xForwardedProto, .xForwardedHost, .smuggled:
                error = .badRequest("Connection names a framing or forwarding field")
                return
            default:
                break
            }
            for j in head.headers.indices where head.headers[j].name.count == tok.count && equalsIgnoringCase(buf, head.headers[j].name, tok) {
                head.headers[j].namedByConnection = true
            }
        }
        return error
    }

    private func equalsIgnoringCase(_ buf: UnsafeRawBufferPointer, _ a: ByteRange, _ b: ByteRange) -> Bool {
        for k in 0..<a.count where ByteClass.lower(buf[a.start + k]) != ByteClass.lower(buf[b.start + k]) { return false }
        return true
    }

    /// Calls `body` for each comma-separated element of a list value, trimmed of whitespace;
    /// empty elements are passed too (count 0), each caller decides what they mean.
    private func forEachElement(_ buf: UnsafeRawBufferPointer, _ r: ByteRange, _ body: (ByteRange) -> Void) {
        var p = r.start
        let end = r.end
        while p <= end {
            var s = p
            while s < end && (buf[s] == 0x20 || buf[s] == 0x09) { s += 1 }
            var c = s
            while c < end && buf[c] != UInt8(ascii: ",") { c += 1 }
            var e = c
            while e > s && (buf[e - 1] == 0x20 || buf[e - 1] == 0x09) { e -= 1 }
            body(ByteRange(start: s, count: e - s))
            p = c + 1
        }
    }
}
