import HTTP1
import Testing

@Suite("Request head parser")
struct RequestParserTests {
    static let accepted: [String] = [
        "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /x?y=1 HTTP/1.0\r\n\r\n",
        "POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
        "POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
        "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX: \u{e9}t\u{e9}\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET http://a/b HTTP/1.1\r\nHost: a\r\n\r\n",
    ]

    @Test("accepts valid requests, whole and split at every byte", arguments: accepted)
    func accepts(_ text: String) {
        let (o, split) = driveEverySplit(bytes(text))
        #expect(o.verdict == .accept, "\(o)")
        #expect(split == nil)
    }

    static let rejected: [(String, Int)] = [
        ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400),
        ("GET / HTTP/1.1\nHost: a\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHo(st: a\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nX: a\u{01}b\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
        ("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n", 400),
        ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        ("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nExpect: nope\r\n\r\n", 417),
    ]

    @Test("rejects malformed and ambiguous requests with the right status", arguments: rejected)
    func rejects(_ c: (String, Int)) {
        let (o, split) = driveEverySplit(bytes(c.0))
        #expect(o.verdict == .reject, "\(c.0.debugDescription): \(o)")
        #expect(o.error?.status == c.1, "\(c.0.debugDescription): \(String(describing: o.error))")
        #expect(split == nil)
    }

    @Test("limits answer 414 and 431")
    func limits() {
        var p = HeadParser(kind: .request, limits: HeadLimits(maxHeadBytes: 1024, maxTargetBytes: 256, maxHeaders: 10))
        let longTarget = bytes("GET /" + String(repeating: "a", count: 600) + " HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(longTarget.withUnsafeBytes { p.parse($0) } == .error(.uriTooLong))
        p.reset()
        let bigHeaders = bytes("GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "b", count: 2000) + "\r\n\r\n")
        #expect(bigHeaders.withUnsafeBytes { p.parse($0) } == .error(.headersTooLarge))
        p.reset()
        let many = bytes("GET / HTTP/1.1\r\nHost: a\r\n" + String(repeating: "X: y\r\n", count: 20) + "\r\n")
        #expect(many.withUnsafeBytes { p.parse($0) } == .error(.headersTooLarge))
        p.reset()
        // Incomplete but already over the limit: answered without waiting for the rest.
        let partial = bytes("GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "b", count: 2000))
        #expect(partial.withUnsafeBytes { p.parse($0) } == .error(.headersTooLarge))
    }

    @Test("derives keep-alive, hop-by-hop names and method facts")
    func semantics() {
        var p = HeadParser(kind: .request)
        let req = bytes("PUT /a HTTP/1.1\r\nHost: h\r\nConnection: close, X-Secret\r\nX-Secret: 1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
        #expect(req.withUnsafeBytes { p.parse($0) } == .complete)
        let h = p.head
        #expect(!h.keepAlive)
        #expect(h.expectContinue)
        #expect(h.methodKind == .put && h.methodKind.isIdempotent)
        #expect(h.requestFraming == .length(3))
        #expect(h.headers.contains { $0.namedByConnection })
        p.reset()
        let old = bytes("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        #expect(old.withUnsafeBytes { p.parse($0) } == .complete)
        #expect(p.head.keepAlive && p.head.versionMinor == 0)
    }

    @Test("pipelined requests are framed one after another")
    func pipelining() {
        let two = bytes("GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhiGET /3 HTTP/1.1\r\nHost: a\r\n\r\n")
        let (o, split) = driveEverySplit(two)
        #expect(o == Outcome(verdict: .accept, messages: 3, error: nil))
        #expect(split == nil)
    }
}

@Suite("Response head parser and body framing")
struct ResponseParserTests {
    @Test("frames by length, chunked, close, and no body for HEAD/204/304/1xx")
    func framing() {
        let cases: [(String, Method, Verdict, Int)] = [
            ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", .get, .accept, 1),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nT: 1\r\n\r\n", .get, .accept, 1),
            ("HTTP/1.1 200 OK\r\n\r\nall until close", .get, .accept, 1),
            ("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", .head, .accept, 1),
            ("HTTP/1.1 204 No Content\r\n\r\n", .get, .accept, 1),
            ("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", .get, .accept, 1),
            ("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", .post, .accept, 1),
            ("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", .get, .accept, 1),
            ("HTTP/1.1 20 OK\r\n\r\n", .get, .reject, 0),
            ("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", .get, .reject, 0),
            ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhi", .get, .incomplete, 0),
        ]
        for (text, method, verdict, messages) in cases {
            let (o, split) = driveEverySplit(bytes(text), kind: .response, requestMethod: method)
            #expect(o.verdict == verdict && o.messages == messages, "\(text.debugDescription): \(o)")
            #expect(split == nil, "\(text.debugDescription)")
        }
    }

    @Test("Transfer-Encoding with Content-Length: chunked wins and the connection is not reused")
    func teWithCL() {
        var p = HeadParser(kind: .response)
        let r = bytes("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n")
        #expect(r.withUnsafeBytes { p.parse($0) } == .complete)
        #expect(p.head.responseFraming(requestMethod: .get) == .chunked)
        #expect(!p.head.keepAlive)
    }

    @Test("decoded chunk payload is exactly the body")
    func decode() {
        let body = bytes("3;x=y\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n")
        var f = BodyFramer(.chunked)
        var out: [UInt8] = []
        var off = 0
        body.withUnsafeBytes { buf in
            while true {
                switch f.next(UnsafeRawBufferPointer(rebasing: buf[off...])) {
                case .data(let o, let c, let used):
                    out += buf[(off + o)..<(off + o + c)]
                    off += used
                case .framing(let used): off += used
                case .end(let used): off += used; return
                case .needMore, .error: return
                }
            }
        }
        #expect(String(decoding: out, as: UTF8.self) == "abc0123456789abcdef")
        #expect(off == body.count && f.isComplete)
    }
}

/// Which requests may become tunnels (RFC 9110 §7.8): the proxy passes `Upgrade` on only for these.
@Suite("Upgrade requests")
struct UpgradeRequestTests {
    static let cases: [(String, Bool)] = [
        ("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", true),
        ("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, upgrade\r\nUpgrade: foo/2, bar\r\n\r\n", true),
        ("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\nContent-Length: 0\r\n\r\n", true),
        // h2c in any spelling, alone or in a list: never (h2c smuggling past the proxy).
        ("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n", false),
        ("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\nUpgrade: H2C\r\n\r\n", false),
        ("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: h2c/1.0, websocket\r\n\r\n", false),
        ("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: h2cx\r\n\r\n", true),
        // A body, HTTP/1.0, no Upgrade field, an empty one, no Connection option, framing in doubt.
        ("POST / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\nContent-Length: 1\r\n\r\nx", false),
        ("POST / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false),
        ("GET / HTTP/1.0\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", false),
        ("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n", false),
        ("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: \r\n\r\n", false),
        ("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n", false),
        ("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n", false),
    ]

    @Test("wantsTunnel", arguments: cases)
    func wantsTunnel(_ c: (String, Bool)) {
        var p = HeadParser(kind: .request)
        let bytes = Array(c.0.utf8)
        let r = bytes.withUnsafeBytes { p.parse($0) }
        guard case .complete = r else {
            Issue.record("did not parse: \(c.0.debugDescription)")
            return
        }
        #expect(p.head.wantsTunnel == c.1, "\(c.0.debugDescription)")
    }
}
