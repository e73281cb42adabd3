import Glibc

/// Limits on a head; exceeding them yields 414 or 431 (for requests) before the head is complete.
public struct HeadLimits: Sendable {
    public var maxHeadBytes: Int
    public var maxTargetBytes: Int
    public var maxHeaders: Int

    public init(maxHeadBytes: Int = 16 * 1024, maxTargetBytes: Int = 8 * 1024, maxHeaders: Int = 100) {
        self.maxHeadBytes = maxHeadBytes
        self.maxTargetBytes = maxTargetBytes
        self.maxHeaders = maxHeaders
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
/// arrives a byte at a time is scanned once. When the blank line is found the head is parsed in one
/// pass. Bare LF or CR, obs-fold, whitespace before a colon and bytes outside the grammar are errors.
public struct HeadParser: Sendable {
    public enum Kind: Sendable { case request, response }

    public let kind: Kind
    public var limits: HeadLimits
    public internal(set) var head = MessageHead()
    private var scanned = 0
    private var lineStart = 0
    private var leading = 0
    private var sawFirstLine = false

    public init(kind: Kind, limits: HeadLimits = HeadLimits()) {
        self.kind = kind
        self.limits = limits
    }

    /// Forgets the previous head; call before parsing the next message.
    public mutating func reset() {
        scanned = 0
        lineStart = 0
        leading = 0
        sawFirstLine = false
        head.reset()
    }

    /// Parses the head at the start of `buf`. Call again with the same (grown) bytes after `.needMore`.
    /// Each line is checked as soon as its LF arrives, so a bad line is refused before the head ends.
    /// Lines are found with memchr; the grammar of each line (which refuses bare CR, obs-fold and
    /// bytes outside it) is then checked in one pass over that line.
    public mutating func parse(_ buf: UnsafeRawBufferPointer) -> HeadResult {
        let n = buf.count
        guard let base = buf.baseAddress else { return .needMore }
        var i = scanned
        while i < n {
            guard let hit = memchr(base + i, 0x0A, n - i) else {
                // An unfinished line: refuse now what no LF can make valid.
                if let e = partialLineError(buf, from: i) { return .error(e) }
                i = n
                break
            }
            i = base.distance(to: UnsafeRawPointer(hit))
            if i == lineStart || buf[i - 1] != 0x0D { return .error(.badRequest("bare LF")) }
            let lineLength = i - 1 - lineStart
            if lineLength == 0 {
                if !sawFirstLine && kind == .request && leading < 8 {
                    // RFC 9112 §2.2: ignore empty lines before the request-line.
                    leading = i + 1
                    lineStart = i + 1
                    i += 1
                    continue
                }
                if !sawFirstLine { return .error(.badRequest("empty start line")) }
                scanned = i + 1
                if i + 1 - leading > limits.maxHeadBytes {
                    return .error(kind == .request ? .headersTooLarge : .badRequest("response head too large"))
                }
                head.end = i + 1
                return applySemantics(buf)
            }
            var p = lineStart
            if !sawFirstLine {
                head.start = leading
                let ok = kind == .request ? parseRequestLine(buf, &p) != nil : parseStatusLine(buf, &p) != nil
                if !ok { return .error(lastError) }
                sawFirstLine = true
            } else {
                if head.headers.count >= limits.maxHeaders {
                    return .error(kind == .request ? .headersTooLarge : .badRequest("too many headers"))
                }
                guard parseField(buf, &p) else { return .error(lastError) }
            }
            lineStart = i + 1
            i += 1
        }
        scanned = i
        if n - leading > limits.maxHeadBytes {
            if !sawFirstLine && kind == .request { return .error(.uriTooLong) }
            return .error(kind == .request ? .headersTooLarge : .badRequest("response head too large"))
        }
        if !sawFirstLine && kind == .request && n - leading > limits.maxTargetBytes + 32 {
            return .error(.uriTooLong)
        }
        return .needMore
    }

    private var lastError: HTTPError = .badRequest("malformed")

    /// A CR not followed by LF, or a line starting with whitespace after the start line (obs-fold),
    /// in the unfinished line from `lineStart`; `from` is where this feed's new bytes begin.
    private func partialLineError(_ buf: UnsafeRawBufferPointer, from: Int) -> HTTPError? {
        if sawFirstLine && lineStart < buf.count && (buf[lineStart] == 0x20 || buf[lineStart] == 0x09) {
            return .badRequest("obsolete line folding")
        }
        var k = max(from - 1, lineStart)
        while k < buf.count - 1 {
            if buf[k] == 0x0D { return .badRequest("bare CR") }
            k += 1
        }
        return nil
    }

    private mutating func fail(_ e: HTTPError) -> Int? {
        lastError = e
        return nil
    }

    /// Parses `version` ("HTTP/1.1") at p; returns the minor version.
    private mutating func parseVersion(_ buf: UnsafeRawBufferPointer, _ p: Int) -> Int? {
        guard p + 8 <= buf.count else { lastError = .badRequest("bad version"); return nil }
        let prefix: StaticString = "HTTP/"
        for k in 0..<5 where buf[p + k] != prefix.utf8Start[k] {
            lastError = .badRequest("bad version")
            return nil
        }
        let major = buf[p + 5], dot = buf[p + 6], minor = buf[p + 7]
        guard dot == UInt8(ascii: "."), major >= 0x30, major <= 0x39, minor >= 0x30, minor <= 0x39 else {
            lastError = .badRequest("bad version")
            return nil
        }
        guard major == UInt8(ascii: "1") else { lastError = .versionNotSupported; return nil }
        return minor == UInt8(ascii: "0") ? 0 : 1
    }

    private mutating func parseRequestLine(_ buf: UnsafeRawBufferPointer, _ p: inout Int) -> Int? {
        let s = p
        while ByteClass.isToken(buf[p]) { p += 1 }
        guard p > s, buf[p] == 0x20 else { return fail(.badRequest("bad method")) }
        head.method = ByteRange(start: s, count: p - s)
        head.methodKind = Method.classify(buf, head.method)
        p += 1
        let t = p
        while ByteClass.isTarget(buf[p]) { p += 1 }
        guard p > t, buf[p] == 0x20 else {
            return fail(buf[p] >= 0x80 || buf[p] < 0x20 && buf[p] != 0x0D ? .badRequest("bad byte in request-target") : .badRequest("bad request-target"))
        }
        if p - t > limits.maxTargetBytes { return fail(.uriTooLong) }
        head.target = ByteRange(start: t, count: p - t)
        p += 1
        guard let minor = parseVersion(buf, p) else { return nil }
        if minor != 1 && buf[p + 7] != UInt8(ascii: "0") { return fail(.versionNotSupported) }
        head.versionMinor = minor
        p += 8
        guard buf[p] == 0x0D, buf[p + 1] == 0x0A else { return fail(.badRequest("bad request line")) }
        let first = buf[head.target.start]
        switch head.methodKind {
        case .connect: break
        case .options where first == UInt8(ascii: "*") && head.target.count == 1: break
        default:
            if first != UInt8(ascii: "/") && !(head.target.count > 7 && (buf.equalsLowercase(ByteRange(start: t, count: 7), "http://") || buf.equalsLowercase(ByteRange(start: t, count: 8), "https://"))) {
                return fail(.badRequest("bad request-target"))
            }
        }
        return p + 2
    }

    private mutating func parseStatusLine(_ buf: UnsafeRawBufferPointer, _ p: inout Int) -> Int? {
        guard let minor = parseVersion(buf, p) else { return nil }
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
        return p + 2
    }

    private mutating func parseField(_ buf: UnsafeRawBufferPointer, _ p: inout Int) -> Bool {
        let s = p
        if buf[p] == 0x20 || buf[p] == 0x09 {
            lastError = .badRequest("obsolete line folding")
            return false
        }
        while ByteClass.isToken(buf[p]) { p += 1 }
        guard p > s else { lastError = .badRequest("bad header name"); return false }
        guard buf[p] == UInt8(ascii: ":") else {
            lastError = .badRequest(buf[p] == 0x20 || buf[p] == 0x09 ? "whitespace before colon" : "bad header name")
            return false
        }
        let name = ByteRange(start: s, count: p - s)
        p += 1
        while buf[p] == 0x20 || buf[p] == 0x09 { p += 1 }
        let v = p
        var lastNonSpace = p
        while buf[p] != 0x0D {
            let b = buf[p]
            guard ByteClass.isFieldValue(b) else { lastError = .badRequest("bad byte in header value"); return false }
            p += 1
            if b != 0x20 && b != 0x09 { lastNonSpace = p }
        }
        guard buf[p + 1] == 0x0A else { lastError = .badRequest("bare CR"); return false }
        let value = ByteRange(start: v, count: lastNonSpace - v)
        head.headers.append(HeaderField(name: name, value: value, kind: HeaderKind.classify(buf, name)))
        p += 2
        return true
    }
}
