import FuzzSupport
import HTTP1
import Proxy
import Runtime

/// Fuzz target: the header rewriter. The input is a request head, optionally followed by a response
/// head (or, when it does not start with a request, a response head to a GET). Each head the parser
/// accepts (whole and split alike) is rewritten into a gather list as Exchange.swift and Relay.swift do, and the
/// bytes sent must parse again with our own parser to the same message and framing, with exactly
/// one framing header, no hop-by-hop field, the forwarding fields only the proxy sets, and no field a
/// lenient peer could read as a framing or forwarding field.
func check(_ bytes: UnsafeRawBufferPointer) {
    let h = Pieces.hash(bytes)
    let limits = HeadLimits(maxHeadBytes: 4096, maxTargetBytes: 1024, maxHeaders: 32)
    let (verdict, request) = HeadFeeder.agreeing(.request, limits, bytes, bytewise: false)
    var client = MessageHead()
    client.methodKind = .get
    var rest = bytes
    if case .complete = verdict, let req = request {
        checkRequest(bytes, req, tls: h & 1 != 0, subject: h & 2 != 0)
        client = req
        rest = UnsafeRawBufferPointer(rebasing: bytes[req.end...])
    }
    let (rv, response) = HeadFeeder.agreeing(.response, limits, rest, bytewise: false, compareStatus: false)
    if case .complete = rv, let resp = response {
        checkResponse(rest, resp, request: client, draining: h & 4 != 0)
    }
}

/// Fixed strings the proxy would supply: the peer address, the upstream's Host line, the client
/// certificate header. Allocated once; they live as long as the process, as the proxy's do.
enum Fixed {
    nonisolated(unsafe) static let peer = buffer("203.0.113.9")
    nonisolated(unsafe) static let hostLine = buffer("Host: 10.0.0.1:8080\r\n")
    nonisolated(unsafe) static let subjectName = buffer("x-client-subject")
    nonisolated(unsafe) static let subjectLine = buffer("X-Client-Subject: CN=fuzz\r\n")
    nonisolated(unsafe) static let requestIDLine = buffer("X-Request-ID: 0123456789abcdef0123456789abcdef\r\n")

    static func buffer(_ s: String) -> UnsafeRawBufferPointer {
        let a = Array(s.utf8)
        let b = UnsafeMutableRawBufferPointer.allocate(byteCount: a.count, alignment: 1)
        b.copyBytes(from: a)
        return UnsafeRawBufferPointer(b)
    }
}

/// The bytes a gather list would send, in an allocation of exactly that size.
func sent(_ iov: IOVecList) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: iov.totalBytes)
    let n = out.withUnsafeMutableBytes { iov.gather(into: $0) }
    require(n == out.count, "gather list gave \(n) of \(out.count) bytes")
    return out
}

/// Parses what the proxy sends: it must be exactly one complete head.
func reparse(_ kind: HeadParser.Kind, _ out: [UInt8], _ what: () -> String) -> MessageHead {
    let roomy = HeadLimits(maxHeadBytes: 1 << 20, maxTargetBytes: 1 << 20, maxHeaders: 10_000)
    return out.withUnsafeBytes { o in
        let (v, head) = HeadFeeder.feed(kind, roomy, o, cuts: [o.count])
        guard let head, head.end == o.count else { fatalError("fuzz property violated: rewritten \(kind) does not parse as one head (\(v)): \"\(quoted(o))\"; \(what())") }
        return head
    }
}

/// Forwarding's own framing header for a framing: how many Content-Length and Transfer-Encoding fields may be sent.
func checkFraming(_ c: FieldCensus, _ framing: Framing, _ what: String) {
    let cl = c[.contentLength], te = c[.transferEncoding]
    switch framing {
    case .chunked: require(te == 1 && cl == 0, "\(what): chunked sent with \(te) Transfer-Encoding and \(cl) Content-Length fields")
    case .length: require(cl == 1 && te == 0, "\(what): fixed length sent with \(cl) Content-Length and \(te) Transfer-Encoding fields")
    case .none: require(cl <= 1 && te == 0, "\(what): no body, sent with \(cl) Content-Length and \(te) Transfer-Encoding fields")
    case .untilClose:
        // Transfer-Encoding fields without chunked (only a response reads until close) may repeat.
        require(cl == 0, "\(what): close-delimited, sent with \(cl) Content-Length fields")
    }
}

/// No field the received head's Connection named may be sent on.
func checkNamedByConnection(_ received: MessageHead, _ p: UnsafeRawBufferPointer, _ out: MessageHead, _ o: UnsafeRawBufferPointer, _ what: String) {
    // "Connection: connection" names the field the proxy may add itself.
    let named = Set(received.headers.filter(\.namedByConnection).map { lowercased(p, $0.name) }).subtracting(["connection"])
    for f in out.headers where named.contains(lowercased(o, f.name)) {
        fatalError("fuzz property violated: \(what): \(lowercased(o, f.name)) was named by Connection and was sent on")
    }
}

func checkRequest(_ p: UnsafeRawBufferPointer, _ req: MessageHead, tls: Bool, subject: Bool) {
    // The proxy refuses (400) what names the subject header in Connection or spells it alike.
    if subject && HeadRewriterEntry.spoofsClientSubject(p.baseAddress!, req, Fixed.subjectName) { return }
    let iov = IOVecList()
    HeadRewriterEntry.request(iov, p.baseAddress!, req, peer: Fixed.peer, hostLine: Fixed.hostLine, tls: tls,
                              subjectName: subject ? Fixed.subjectName : nil, subjectLine: subject ? Fixed.subjectLine : nil,
                              requestIDLine: Fixed.requestIDLine)
    let out = sent(iov)
    let what = { "request \"\(quoted(UnsafeRawBufferPointer(rebasing: p[0..<req.end])))\"" }
    let fwd = reparse(.request, out, what)
    out.withUnsafeBytes { o in
        let c = FieldCensus(fwd, o)
        // An absolute-form target is sent in origin form ("/" when its path is empty), RFC 9112 §3.2.2.
        var target = bytes(p, req.target)
        if req.targetAuthority != nil {
            target = bytes(p, req.targetPath)
            if target.first != UInt8(ascii: "/") { target.insert(UInt8(ascii: "/"), at: 0) }
        }
        require(bytes(o, fwd.method) == bytes(p, req.method) && bytes(o, fwd.target) == target && fwd.versionMinor == 1,
                "\(what()): request line changed to \"\(quoted(UnsafeRawBufferPointer(rebasing: o[0..<fwd.target.end])))\"")
        require(fwd.requestFraming == req.requestFraming, "\(what()): framing \(req.requestFraming) sent as \(fwd.requestFraming)")
        checkFraming(c, req.requestFraming, what())
        // The hop-by-hop fields the proxy itself sends: Connection: close after an ambiguous request,
        // or for an upgrade the backend may agree to, Connection: upgrade and the Upgrade lines as
        // they came (and the backend then sees the same upgrade asked for).
        let upgradeLines = req.headers.filter { $0.kind == .upgrade }.count
        let expected = req.ambiguous ? 1 : req.wantsTunnel ? 1 + upgradeLines : 0
        require(c.hopByHop == expected && fwd.keepAlive == !req.ambiguous && fwd.wantsTunnel == req.wantsTunnel,
                "\(what()): hop-by-hop fields sent: \(c.hopByHop), expected \(expected)")
        checkNamedByConnection(req, p, fwd, o, what())
        require(c[.host] == 1 && c[.xForwardedFor] == 1 && c[.xForwardedProto] == 1 && c[.xForwardedHost] == (req.host == nil ? 0 : 1),
                "\(what()): Host \(c[.host]), X-Forwarded-For \(c[.xForwardedFor]), -Proto \(c[.xForwardedProto]), -Host \(c[.xForwardedHost]) sent")
        if subject { require(c.count(named: "x-client-subject") == 1, "\(what()): client subject header sent \(c.count(named: "x-client-subject")) times") }
        require(c.count(named: "x-request-id") == 1, "\(what()): X-Request-ID sent \(c.count(named: "x-request-id")) times")
        let protected = ["content-length", "transfer-encoding", "host", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-request-id"]
            + (subject ? ["x-client-subject"] : [])
        let odd = c.lookalikes(of: protected)
        require(odd.isEmpty, "\(what()): sent \(odd), which a lenient backend reads as a framing or forwarding field")
    }
}

func checkResponse(_ p: UnsafeRawBufferPointer, _ resp: MessageHead, request: MessageHead, draining: Bool) {
    // As relayResponse (Relay.swift) decides for the client.
    let framing = resp.responseFraming(requestMethod: request.methodKind)
    let dechunk = framing == .chunked && request.versionMinor == 0
    let clientKeep = request.keepAlive && framing != .untilClose && !dechunk && !draining
    let close = !clientKeep && request.versionMinor == 1
    let keepAlive10 = clientKeep && request.versionMinor == 0
    let iov = IOVecList()
    HeadRewriterEntry.response(iov, p.baseAddress!, resp, close: close, keepAlive10: keepAlive10, dechunk: dechunk)
    let out = sent(iov)
    let what = { "response \"\(quoted(UnsafeRawBufferPointer(rebasing: p[0..<resp.end])))\" to \(request.methodKind) HTTP/1.\(request.versionMinor) (close \(close), keepAlive10 \(keepAlive10), dechunk \(dechunk))" }
    let fwd = reparse(.response, out, what)
    out.withUnsafeBytes { o in
        let c = FieldCensus(fwd, o)
        require(fwd.status == resp.status && fwd.versionMinor == 1, "\(what()): status line changed")
        let expected: Framing = dechunk ? .untilClose : framing
        require(fwd.responseFraming(requestMethod: request.methodKind) == expected, "\(what()): framing \(expected) sent as \(fwd.responseFraming(requestMethod: request.methodKind))")
        if dechunk {
            require(c[.contentLength] == 0 && c[.transferEncoding] == 0, "\(what()): decoded body sent with a framing field")
        } else if request.methodKind == .head && resp.status >= 200 && resp.status != 204 && resp.status != 304 {
            // A HEAD response's fields describe the GET's body (RFC 9110 §9.3.2); the client reads
            // none either way. At most one framing field, as for that GET.
            checkFraming(c, resp.responseFraming(requestMethod: .get), what())
        } else {
            checkFraming(c, framing, what())
        }
        require(c.hopByHop == c[.connection] && c[.connection] == (close || keepAlive10 ? 1 : 0), "\(what()): hop-by-hop fields sent")
        if close { require(!fwd.keepAlive, "\(what()): client told to keep a connection the proxy closes") }
        checkNamedByConnection(resp, p, fwd, o, what())
        let odd = c.lookalikes(of: ["content-length", "transfer-encoding"])
        require(odd.isEmpty, "\(what()): sent \(odd), which a lenient client reads as a framing field")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    check(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

#if !FUZZING
@main enum Main { static func main() { Replay.main(check) } }
#endif
