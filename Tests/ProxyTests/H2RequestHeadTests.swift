@testable import Proxy
import Testing

/// HTTP/2 fields → the HTTP/1.1 head that then goes through the usual parser and rewriter.
@Suite("HTTP/2 request head")
struct H2RequestHeadTests {
    static func make(_ fields: [(String, String)], bodyFollows: Bool = false, max: Int = 16384) -> (String, Bool)? {
        var h = H2RequestHead(maxListSize: max)
        for (n, v) in fields {
            let ok = Array(n.utf8).withUnsafeBytes { nb in Array(v.utf8).withUnsafeBytes { vb in h.add(name: nb, value: vb) } }
            if !ok { return nil }
        }
        guard let r = h.http1(bodyFollows: bodyFollows) else { return nil }
        return (String(decoding: r.head, as: UTF8.self), r.chunked)
    }

    static let base = [(":method", "GET"), (":scheme", "https"), (":authority", "a.example"), (":path", "/p?q")]

    @Test(":authority is the Host, cookies are joined, fields keep their order")
    func basic() {
        let r = Self.make(Self.base + [("accept", "*/*"), ("cookie", "a=1"), ("x-y", "z"), ("cookie", "b=2")])
        #expect(r?.0 == "GET /p?q HTTP/1.1\r\nHost: a.example\r\naccept: */*\r\nx-y: z\r\nCookie: a=1; b=2\r\n\r\n")
        #expect(r?.1 == false)
    }

    @Test("a body without content-length goes chunked; with one, as it is")
    func framing() {
        #expect(Self.make(Self.base, bodyFollows: true)?.0.hasSuffix("Transfer-Encoding: chunked\r\n\r\n") == true)
        #expect(Self.make(Self.base, bodyFollows: true)?.1 == true)
        let cl = Self.make(Self.base + [("content-length", "5")], bodyFollows: true)
        #expect(cl?.1 == false && cl?.0.contains("content-length: 5\r\n") == true && cl?.0.contains("Transfer-Encoding") == false)
    }

    @Test("host stands in for a missing :authority; a different Host beside :authority is refused")
    func host() {
        let noAuthority = [(":method", "GET"), (":scheme", "http"), (":path", "/"), ("host", "h.example")]
        #expect(Self.make(noAuthority)?.0 == "GET / HTTP/1.1\r\nHost: h.example\r\n\r\n")
        #expect(Self.make(Self.base + [("host", "A.Example")]) != nil)
        #expect(Self.make(Self.base + [("host", "evil.example")]) == nil)
        #expect(Self.make([(":method", "GET"), (":path", "/")]) == nil)
    }

    @Test("only http and https schemes, and only an origin-form :path (or * for OPTIONS)")
    func schemeAndPath() {
        #expect(Self.make([(":method", "GET"), (":scheme", "x"), (":authority", "a"), (":path", "/")]) == nil)
        #expect(Self.make([(":method", "GET"), (":scheme", "https"), (":authority", "a"), (":path", "http://other/p")]) == nil)
        #expect(Self.make([(":method", "OPTIONS"), (":scheme", "https"), (":authority", "a"), (":path", "*")])?.0.hasPrefix("OPTIONS * HTTP/1.1\r\n") == true)
        #expect(Self.make([(":method", "GET"), (":scheme", "https"), (":authority", "a"), (":path", "*")]) == nil)
    }

    @Test(":protocol (extended CONNECT) is refused; a field list over the limit is flagged, not built partly")
    func limits() {
        #expect(Self.make(Self.base + [(":protocol", "websocket")]) == nil)
        var h = H2RequestHead(maxListSize: 200)
        for i in 0..<10 {
            _ = Array("x-\(i)".utf8).withUnsafeBytes { n in Array(repeating: UInt8(ascii: "v"), count: 20).withUnsafeBytes { v in h.add(name: n, value: v) } }
        }
        #expect(h.tooLarge)
    }
}
