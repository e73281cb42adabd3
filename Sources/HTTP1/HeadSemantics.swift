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
                guard let v = parseContentLength(buf, f.value) else { return .error(.badRequest("bad Content-Length")) }
                if let existing = head.contentLength, existing != v { return .error(.badRequest("conflicting Content-Length")) }
                head.contentLength = v
            case .transferEncoding:
                sawTE = true
                var bad = false
                forEachToken(buf, f.value) { tok, isLast in
                    if buf.equalsLowercase(tok, "chunked") {
                        if head.chunked { bad = true }  // chunked twice
                        head.chunked = true
                    } else {
                        if head.chunked { bad = true }  // a coding after chunked
                        head.otherTransferCoding = true
                    }
                    _ = isLast
                }
                if bad || f.value.count == 0 { return .error(.badRequest("bad Transfer-Encoding")) }
            case .connection:
                var bad = false
                forEachToken(buf, f.value) { tok, _ in
                    if buf.equalsLowercase(tok, "close") { connectionClose = true }
                    else if buf.equalsLowercase(tok, "keep-alive") { connectionKeepAlive = true }
                    else if buf.equalsLowercase(tok, "upgrade") { head.upgrade = true }
                    else {
                        for j in head.headers.indices where head.headers[j].name.count == tok.count && equalsIgnoringCase(buf, head.headers[j].name, tok) {
                            head.headers[j].namedByConnection = true
                        }
                    }
                    for k in 0..<tok.count where !ByteClass.isToken(buf[tok.start + k]) { bad = true }
                }
                if bad { return .error(.badRequest("bad Connection header")) }
            case .smuggled:
                return .error(.badRequest("framing header spelled with underscore"))
            case .host:
                hosts += 1
                head.host = f.value
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
            if let host = head.host {
                for k in 0..<host.count {
                    let b = buf[host.start + k]
                    if b <= 0x20 || b == UInt8(ascii: "/") || b == UInt8(ascii: ",") || b == UInt8(ascii: "@") || b >= 0x7F {
                        return .error(.badRequest("bad Host"))
                    }
                }
            }
            if head.methodKind == .connect { return .error(.notImplemented("CONNECT is not supported")) }
        case .response:
            if sawTE && head.contentLength != nil {
                // RFC 9112 §6.3: Transfer-Encoding wins, and the connection must not be reused.
                head.contentLength = nil
                connectionClose = true
            }
        }
        head.keepAlive = head.versionMinor == 1 ? !connectionClose : (connectionKeepAlive && !connectionClose)
        return .complete
    }

    private func parseContentLength(_ buf: UnsafeRawBufferPointer, _ r: ByteRange) -> UInt64? {
        guard r.count > 0, r.count <= 18 else { return nil }
        var v: UInt64 = 0
        for k in 0..<r.count {
            let d = buf[r.start + k]
            guard d >= 0x30, d <= 0x39 else { return nil }
            v = v * 10 + UInt64(d - 0x30)
        }
        return v
    }

    private func equalsIgnoringCase(_ buf: UnsafeRawBufferPointer, _ a: ByteRange, _ b: ByteRange) -> Bool {
        for k in 0..<a.count where ByteClass.lower(buf[a.start + k]) != ByteClass.lower(buf[b.start + k]) { return false }
        return true
    }

    /// Calls `body` for each comma-separated, whitespace-trimmed, non-empty element of a list value.
    private func forEachToken(_ buf: UnsafeRawBufferPointer, _ r: ByteRange, _ body: (ByteRange, Bool) -> Void) {
        var p = r.start
        let end = r.end
        while p < end {
            while p < end && (buf[p] == 0x20 || buf[p] == 0x09 || buf[p] == UInt8(ascii: ",")) { p += 1 }
            let s = p
            while p < end && buf[p] != UInt8(ascii: ",") { p += 1 }
            var e = p
            while e > s && (buf[e - 1] == 0x20 || buf[e - 1] == 0x09) { e -= 1 }
            if e > s { body(ByteRange(start: s, count: e - s), p >= end) }
        }
    }
}
