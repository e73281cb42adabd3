/// The check of a head's unfinished last line, resumable byte by byte: each feed validates only its
/// new bytes. It applies the rules of the complete-line parsers in `HeadParser` in the same order
/// and with the same answers, so a line refused in pieces is refused the same way whole (the split
/// tests feed every case split at every byte to hold the two to that).
struct LineScan: Sendable {
    enum Phase: Sendable, Equatable {
        // Request line.
        case method, target, version, lineEnd
        // Status line.
        case statusVersion, statusSpace, code, afterCode, reason
        // Header line.
        case fieldStart, fieldStartCR, name, value
        /// After a CR: only LF (which ends the line and is never scanned here) may follow.
        case afterCR
    }

    /// The line being checked (its first byte), or -1 before the first.
    private(set) var line = -1
    private(set) var pos = 0
    private var phase = Phase.method
    private var kind = HeadParser.Kind.request
    /// Bytes seen in the current phase, and where the current part (target, version, code) began.
    private var count = 0
    private var partStart = 0

    mutating func invalidate() { line = -1 }

    mutating func restart(at p: Int, firstLine: Bool, kind: HeadParser.Kind) {
        line = p
        pos = p
        count = 0
        partStart = p
        self.kind = kind
        phase = firstLine ? (kind == .request ? .method : .statusVersion) : .fieldStart
    }

    /// Checks the bytes from where the last call stopped up to `end`; returns the error the first
    /// bad byte makes, or nil when every byte so far can still start a valid line.
    mutating func run(_ buf: UnsafeRawBufferPointer, upTo end: Int, lineStart: Int, limits: HeadLimits, headers: Int) -> HTTPError? {
        while pos < end {
            if let e = step(buf[pos], buf, lineStart: lineStart, limits: limits, headers: headers) { return e }
            pos += 1
        }
        return nil
    }

    private mutating func step(_ b: UInt8, _ buf: UnsafeRawBufferPointer, lineStart: Int, limits: HeadLimits, headers: Int) -> HTTPError? {
        switch phase {
        case .method:
            if ByteClass.isToken(b) {
                count += 1
                if count > limits.maxMethodBytes { return .notImplemented("method too long") }
            } else if b == 0x20 && count > 0 {
                begin(.target)
            } else if b == 0x0D && count == 0 {
                phase = .afterCR  // an empty line before the request-line, if LF follows
            } else {
                return .badRequest("bad method")
            }
        case .target:
            if ByteClass.isTarget(b) {
                count += 1
                if count > limits.maxTargetBytes { return .uriTooLong }
            } else if b == 0x20 && count > 0 {
                let method = Method.classify(buf, ByteRange(start: lineStart, count: partStart - 1 - lineStart))
                if case .invalid(let e) = RequestTarget.form(buf, method: method, target: ByteRange(start: partStart, count: count)) { return e }
                begin(.version)
            } else {
                return .badRequest("bad request-target")
            }
        case .version, .statusVersion:
            return versionByte(b, buf)
        case .lineEnd:
            guard b == 0x0D else { return .badRequest("bad request line") }
            phase = .afterCR
        case .statusSpace:
            guard b == 0x20 else { return .badRequest("bad status line") }
            begin(.code)
        case .code:
            guard b >= 0x30, b <= 0x39 else { return .badRequest("bad status code") }
            count += 1
            if count == 3 {
                if buf[partStart] == 0x30 { return .badRequest("bad status code") }  // under 100
                phase = .afterCode
            }
        case .afterCode:
            if b == 0x20 { phase = .reason } else if b == 0x0D { phase = .afterCR } else { return .badRequest("bad status line") }
        case .reason:
            if b == 0x0D { phase = .afterCR } else if !ByteClass.isFieldValue(b) { return .badRequest("bad reason phrase") }
        case .fieldStart:
            // The line may still be the blank line that ends the head; anything else is a field.
            if b == 0x0D { phase = .fieldStartCR; return nil }
            if headers >= limits.maxHeaders { return kind == .request ? .headersTooLarge : .badRequest("too many headers") }
            if b == 0x20 || b == 0x09 { return .badRequest("obsolete line folding") }
            guard ByteClass.isToken(b) else { return .badRequest("bad header name") }
            phase = .name
        case .fieldStartCR:
            if headers >= limits.maxHeaders { return kind == .request ? .headersTooLarge : .badRequest("too many headers") }
            return .badRequest("bare CR")
        case .name:
            if b == UInt8(ascii: ":") { phase = .value } else if !ByteClass.isToken(b) { return .badRequest("bad header name") }
        case .value:
            if b == 0x0D { phase = .afterCR } else if !ByteClass.isFieldValue(b) { return .badRequest("bad byte in header value") }
        case .afterCR:
            return .badRequest("bare CR")
        }
        return nil
    }

    private mutating func begin(_ next: Phase) {
        phase = next
        count = 0
        partStart = pos + 1
    }

    /// One byte of "HTTP/d.d"; the eighth decides between 400 and 505 as the complete-line parser does.
    private mutating func versionByte(_ b: UInt8, _ buf: UnsafeRawBufferPointer) -> HTTPError? {
        let k = count
        count += 1
        let ok: Bool
        switch k {
        case 0..<5: ok = b == (StaticString("HTTP/").utf8Start + k).pointee
        case 6: ok = b == UInt8(ascii: ".")
        default: ok = b >= 0x30 && b <= 0x39
        }
        guard ok else { return .badRequest("bad version") }
        guard k == 7 else { return nil }
        if case .some(.failure(let e)) = HeadParser.versionVerdict(buf, partStart) { return e }
        if phase == .version {
            phase = .lineEnd
        } else {
            phase = .statusSpace
        }
        count = 0
        return nil
    }
}
