import Glibc

/// Limits on a head; exceeding them yields 414, 431 or 501 (for requests) before the head is complete.
public struct HeadLimits: Sendable {
    public var maxHeadBytes: Int
    public var maxTargetBytes: Int
    public var maxHeaders: Int
    /// A longer method token is answered 501: no method we could forward is that long, and a
    /// bound keeps the verdict on a request line independent of how its bytes arrive.
    public var maxMethodBytes: Int

    public init(maxHeadBytes: Int = 16 * 1024, maxTargetBytes: Int = 8 * 1024, maxHeaders: Int = 100, maxMethodBytes: Int = 32) {
        self.maxHeadBytes = maxHeadBytes
        self.maxTargetBytes = maxTargetBytes
        self.maxHeaders = maxHeaders
        self.maxMethodBytes = maxMethodBytes
    }
}

/// The result of feeding bytes to a head parser.
public enum HeadResult: Equatable, Sendable {
    /// More bytes are needed; nothing is consumed yet.
    case needMore
    /// The head is complete and spans `head.start..<head.end` of the buffer.
    case complete
    case error(HTTPError)
}

/// Incremental, strict HTTP/1.1 head parser (RFC 9112 §2–5) for requests or responses.
///
/// Feeding is incremental: it remembers how far it has scanned for the blank line, so a head that
/// arrives a byte at a time is scanned once. Bare LF or CR, obs-fold, whitespace before a colon and
/// bytes outside the grammar are errors.
///
/// The verdict never depends on how the bytes were split across reads: every rule is decided by
/// the first byte that breaks it, checked left to right, and the head size limit is the byte at
/// `maxHeadBytes`. Complete lines are parsed in one pass each (the common case: a head that arrives
/// whole never takes another path); the unfinished last line is checked as far as it goes by a
/// resumable validator (`LineScan`) that applies the same rules in the same order, so a bad line is
/// refused before it ends and a line over a limit gets the same answer whole or in pieces.
public struct HeadParser: Sendable {
    public enum Kind: Sendable { case request, response }

    public let kind: Kind
    public var limits: HeadLimits
    public internal(set) var head = MessageHead()
    private var scanned = 0
    private var lineStart = 0
    private var leading = 0
    private var sawFirstLine = false
    /// How far the unfinished line at `lineStart` has been validated.
    private var scan = LineScan()

    public init(kind: Kind, limits: HeadLimits = HeadLimits()) {
        self.kind = kind
        self.limits = limits
    }

    /// Lends the parsed head to `body` without copying it. (Reading `head` off a parser that is a
    /// class's stored property copies the whole head, field array included; a mutating access, even
    /// one that changes nothing, reaches it in place.)
    public mutating func lendHead<R>(_ body: (borrowing MessageHead) -> R) -> R { body(head) }

    /// Forgets the previous head; call before parsing the next message.
    public mutating func reset() {
        scanned = 0
        lineStart = 0
        leading = 0
        sawFirstLine = false
        scan.invalidate()
        head.reset()
    }

    /// Parses the head at the start of `buf`. Call again with the same (grown) bytes after `.needMore`.
    /// Lines are found with memchr; the grammar of each complete line (which refuses bare CR,
    /// obs-fold and bytes outside it) is then checked in one pass over that line.
    public mutating func parse(_ buf: UnsafeRawBufferPointer) -> HeadResult {
        let n = buf.count
        guard let base = buf.baseAddress else { return .needMore }
        var i = scanned
        var limit = leading + limits.maxHeadBytes
        while i < n {
            guard let hit = memchr(base + i, 0x0A, n - i) else { break }
            i = base.distance(to: UnsafeRawPointer(hit))
            if i >= limit || i == lineStart || buf[i - 1] != 0x0D {
                // The line's own bytes (up to the limit) decide first, then the limit, then the bare LF.
                scanned = i
                if let e = validateLine(buf, upTo: min(i, limit)) { return .error(e) }
                return .error(i >= limit ? sizeError : .badRequest("bare LF"))
            }
            if i - 1 == lineStart {
                if !sawFirstLine && kind == .request && leading < 8 {
                    // RFC 9112 §2.2: ignore empty lines before the request-line.
                    leading = i + 1
                    lineStart = i + 1
                    limit = leading + limits.maxHeadBytes
                    i += 1
                    continue
                }
                if !sawFirstLine { return .error(.badRequest("empty start line")) }
                scanned = i + 1
                head.end = i + 1
                return applySemantics(buf)
            }
            var p = lineStart
            if !sawFirstLine {
                head.start = leading
                let ok = kind == .request ? parseRequestLine(buf, &p) : parseStatusLine(buf, &p)
                if !ok { return .error(lastError) }
                sawFirstLine = true
            } else {
                if head.headers.count >= limits.maxHeaders { return .error(tooManyHeaders) }
                guard parseField(buf, p, cr: i - 1) else { return .error(lastError) }
            }
            lineStart = i + 1
            i += 1
        }
        scanned = n
        if let e = validateLine(buf, upTo: min(n, limit)) { return .error(e) }
        if n > limit { return .error(sizeError) }
        return .needMore
    }

    /// The answer to a head that does not end within `maxHeadBytes`.
    var sizeError: HTTPError {
        if kind == .response { return .badRequest("response head too large") }
        return sawFirstLine ? .headersTooLarge : .uriTooLong
    }

    var tooManyHeaders: HTTPError {
        kind == .request ? .headersTooLarge : .badRequest("too many headers")
    }

    /// Runs the unfinished line's validator over the bytes up to `end`, from the line's start the
    /// first time it sees this line (so a head that arrives whole never touches it).
    private mutating func validateLine(_ buf: UnsafeRawBufferPointer, upTo end: Int) -> HTTPError? {
        if scan.line != lineStart { scan.restart(at: lineStart, firstLine: !sawFirstLine, kind: kind) }
        return scan.run(buf, upTo: end, lineStart: lineStart, limits: limits, headers: head.headers.count)
    }

    private var lastError: HTTPError = .badRequest("malformed")

    private mutating func fail(_ e: HTTPError) -> Bool {
        lastError = e
        return false
    }

    /// Parses `version` ("HTTP/1.1") at p; returns the minor version. Every malformed version is
    /// 400; only a well-formed one other than 1.0 or 1.1 is 505 (as `LineScan` decides it).
    private mutating func parseVersion(_ buf: UnsafeRawBufferPointer, _ p: Int) -> Int? {
        switch Self.versionVerdict(buf, p) {
        case .some(.success(let minor)): return minor
        case .some(.failure(let e)): lastError = e; return nil
        case .none: lastError = .badRequest("bad version"); return nil
        }
    }

    /// The verdict on the 8 bytes of a version at p, or nil if fewer than 8 bytes are there.
    static func versionVerdict(_ buf: UnsafeRawBufferPointer, _ p: Int) -> Result<Int, HTTPError>? {
        guard p + 8 <= buf.count else { return nil }
        let prefix: StaticString = "HTTP/"
        for k in 0..<5 where buf[p + k] != prefix.utf8Start[k] { return .failure(.badRequest("bad version")) }
        let major = buf[p + 5], dot = buf[p + 6], minor = buf[p + 7]
        guard dot == UInt8(ascii: "."), major >= 0x30, major <= 0x39, minor >= 0x30, minor <= 0x39 else {
            return .failure(.badRequest("bad version"))
        }
        guard major == UInt8(ascii: "1"), minor <= UInt8(ascii: "1") else { return .failure(.versionNotSupported) }
        return .success(minor == UInt8(ascii: "0") ? 0 : 1)
    }

    /// method SP request-target SP HTTP-version CRLF; each part is checked before the next, in the
    /// order `LineScan` checks them.
    private mutating func parseRequestLine(_ buf: UnsafeRawBufferPointer, _ p: inout Int) -> Bool {
        let s = p
        while ByteClass.isToken(buf[p]) { p += 1 }
        if p - s > limits.maxMethodBytes { return fail(.notImplemented("method too long")) }
        guard p > s, buf[p] == 0x20 else { return fail(.badRequest("bad method")) }
        head.method = ByteRange(start: s, count: p - s)
        head.methodKind = Method.classify(buf, head.method)
        p += 1
        let t = p
        while ByteClass.isTarget(buf[p]) { p += 1 }
        if p - t > limits.maxTargetBytes { return fail(.uriTooLong) }
        guard p > t, buf[p] == 0x20 else {
            return fail(buf[p] >= 0x80 || buf[p] < 0x20 && buf[p] != 0x0D ? .badRequest("bad byte in request-target") : .badRequest("bad request-target"))
        }
        head.target = ByteRange(start: t, count: p - t)
        switch RequestTarget.form(buf, method: head.methodKind, target: head.target) {
        case .invalid(let e): return fail(e)
        case .absolute(let authority, let path):
            head.targetAuthority = authority
            head.targetPath = path
        case .other: break
        }
        p += 1
        guard let minor = parseVersion(buf, p) else { return false }
        head.versionMinor = minor
        p += 8
        guard buf[p] == 0x0D, buf[p + 1] == 0x0A else { return fail(.badRequest("bad request line")) }
        p += 2
        return true
    }

    private mutating func parseStatusLine(_ buf: UnsafeRawBufferPointer, _ p: inout Int) -> Bool {
        guard let minor = parseVersion(buf, p) else { return false }
        head.versionMinor = minor
        p += 8
        guard buf[p] == 0x20 else { return fail(.badRequest("bad status line")) }
        p += 1
        var code = 0
        for _ in 0..<3 {
            let d = buf[p]
            guard d >= 0x30, d <= 0x39 else { return fail(.badRequest("bad status code")) }
            code = code * 10 + Int(d - 0x30)
            p += 1
        }
        guard code >= 100 else { return fail(.badRequest("bad status code")) }
        head.status = code
        if buf[p] == 0x20 {
            p += 1
            let r = p
            while buf[p] != 0x0D {
                guard ByteClass.isFieldValue(buf[p]) else { return fail(.badRequest("bad reason phrase")) }
                p += 1
            }
            head.reason = ByteRange(start: r, count: p - r)
        }
        guard buf[p] == 0x0D, buf[p + 1] == 0x0A else { return fail(.badRequest("bad status line")) }
        p += 2
        return true
    }

    /// One field line, `start..<cr` (the line's CRLF is at `cr`, found by `parse`). The value is
    /// checked a word at a time; its trailing whitespace is trimmed from the end.
    private mutating func parseField(_ buf: UnsafeRawBufferPointer, _ start: Int, cr: Int) -> Bool {
        var p = start
        if buf[p] == 0x20 || buf[p] == 0x09 {
            lastError = .badRequest("obsolete line folding")
            return false
        }
        while ByteClass.isToken(buf[p]) { p += 1 }
        guard p > start else { lastError = .badRequest("bad header name"); return false }
        guard buf[p] == UInt8(ascii: ":") else {
            lastError = .badRequest(buf[p] == 0x20 || buf[p] == 0x09 ? "whitespace before colon" : "bad header name")
            return false
        }
        let name = ByteRange(start: start, count: p - start)
        p += 1
        while buf[p] == 0x20 || buf[p] == 0x09 { p += 1 }
        let v = p
        let bad = ByteClass.firstNonFieldValue(buf, from: v, to: cr)
        if bad < cr {
            // The first byte that breaks the rule decides, as when the line arrives in pieces.
            lastError = .badRequest(buf[bad] == 0x0D ? "bare CR" : "bad byte in header value")
            return false
        }
        var e = max(v, cr)
        while e > v && (buf[e - 1] == 0x20 || buf[e - 1] == 0x09) { e -= 1 }
        head.headers.append(HeaderField(name: name, value: ByteRange(start: v, count: e - v), kind: HeaderKind.classify(buf, name)))
        return true
    }
}
