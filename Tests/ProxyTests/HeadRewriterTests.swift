import HTTP1
@testable import Proxy
import Testing

/// Input head → the exact head bytes forwarded, for requests toward backends and responses
/// toward clients.
@Suite("Header rewriter")
struct HeadRewriterTests {
    static let xf = "X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: http\r\n"

    static let requests: [(String, String)] = [
        ("GET / HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n",
         "GET / HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n" + xf + "X-Forwarded-Host: a\r\n\r\n"),
        ("GET /x HTTP/1.0\r\n\r\n",
         "GET /x HTTP/1.1\r\n" + xf + "Host: backend:80\r\n\r\n"),
        // Hop-by-hop fields, the fields Connection names, Expect and the client's X-Forwarded-Proto/-Host go.
        ("PUT /u HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret\r\nKeep-Alive: 5\r\nX-Secret: s\r\nTE: trailers\r\nTrailer: X\r\nProxy-Connection: x\r\nUpgrade: h2c\r\nExpect: 100-continue\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil\r\nX-Keep: k\r\nContent-Length: 0\r\n\r\n",
         "PUT /u HTTP/1.1\r\nHost: a\r\nX-Keep: k\r\nContent-Length: 0\r\n" + xf + "X-Forwarded-Host: a\r\n\r\n"),
        // The client's X-Forwarded-For is kept, with the peer appended.
        ("GET / HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1\r\nHost: a\r\nX-Forwarded-For: 2.2.2.2\r\n\r\n",
         "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.1.1.1, 2.2.2.2, 10.0.0.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: a\r\n\r\n"),
        // Repeated identical Content-Length: exactly one line.
        // Repeated Content-Length lines go on as one, and the backend is told this connection ends.
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nX: 1\r\nContent-Length: 5\r\n\r\n",
         "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nX: 1\r\n" + xf + "Connection: close\r\nX-Forwarded-Host: a\r\n\r\n"),
        // Transfer-Encoding in several lines goes on as one line.
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nX: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
         "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\nX: 1\r\n" + xf + "X-Forwarded-Host: a\r\n\r\n"),
        // Absolute form: origin-form target, and the authority as Host in place of the client's.
        ("GET http://a.example:8080/p?q HTTP/1.1\r\nHost: b\r\nX: 1\r\n\r\n",
         "GET /p?q HTTP/1.1\r\nX: 1\r\nHost: a.example:8080\r\n" + xf + "X-Forwarded-Host: a.example:8080\r\n\r\n"),
        ("GET http://a.example HTTP/1.1\r\nHost: a.example\r\n\r\n",
         "GET / HTTP/1.1\r\nHost: a.example\r\n" + xf + "X-Forwarded-Host: a.example\r\n\r\n"),
        ("OPTIONS HTTPS://a.example?q=1 HTTP/1.0\r\n\r\n",
         "OPTIONS /?q=1 HTTP/1.1\r\nHost: a.example\r\n" + xf + "X-Forwarded-Host: a.example\r\n\r\n"),
        // An upgrade the backend may agree to: the protocols offered go on with `Connection: upgrade`
        // (any other option the client named still goes, and the fields it names).
        ("GET /chat HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade, X-Hop\r\nX-Hop: 1\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n",
         "GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n" + xf + "Connection: upgrade\r\nX-Forwarded-Host: a\r\n\r\n"),
        // Not a tunnel: h2c offered (h2c smuggling), a body, HTTP/1.0, no Upgrade field, no Connection option.
        ("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: websocket, h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
         "GET / HTTP/1.1\r\nHost: a\r\n" + xf + "X-Forwarded-Host: a\r\n\r\n"),
        ("POST / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\nContent-Length: 2\r\n\r\n",
         "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n" + xf + "X-Forwarded-Host: a\r\n\r\n"),
        ("GET / HTTP/1.0\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
         "GET / HTTP/1.1\r\nHost: a\r\n" + xf + "X-Forwarded-Host: a\r\n\r\n"),
        ("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n",
         "GET / HTTP/1.1\r\nHost: a\r\n" + xf + "X-Forwarded-Host: a\r\n\r\n"),
        ("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n",
         "GET / HTTP/1.1\r\nHost: a\r\n" + xf + "X-Forwarded-Host: a\r\n\r\n"),
        // Trailing whitespace of a value is not forwarded.
        ("GET / HTTP/1.1\r\nHost: a\r\nX: a \t\r\n\r\n",
         "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n" + xf + "X-Forwarded-Host: a\r\n\r\n"),
    ]

    @Test("request heads forwarded to a backend", arguments: requests)
    func request(_ c: (String, String)) throws {
        let input = Array(c.0.utf8)
        let head = try Rewrite.parse(input, kind: .request).get()
        let out = String(decoding: Rewrite.request(input, head), as: UTF8.self)
        #expect(out == c.1, "\(c.0.debugDescription)\n got \(out.debugDescription)\nwant \(c.1.debugDescription)")
    }

    @Test("the client-certificate subject header is only ever the proxy's")
    func subject() throws {
        let input = Array("GET / HTTP/1.1\r\nHost: a\r\nX-Client-Subject: CN=forged\r\n\r\n".utf8)
        let head = try Rewrite.parse(input, kind: .request).get()
        let out = String(decoding: Rewrite.request(input, head, tls: true, subjectName: Array("x-client-subject".utf8),
                                                   subjectLine: Array("X-Client-Subject: CN=me\r\n".utf8)), as: UTF8.self)
        #expect(out == "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: https\r\nX-Client-Subject: CN=me\r\nX-Forwarded-Host: a\r\n\r\n")
    }

    @Test("X-Request-ID: every one the client sent gives way to the proxy's line; with request_id off they pass as they came")
    func requestID() throws {
        let input = Array("GET / HTTP/1.1\r\nHost: a\r\nX-Request-ID: one\r\nx-request-id: two\r\nX: 1\r\nX_Request__ID-: three\r\n\r\n".utf8)
        let head = try Rewrite.parse(input, kind: .request).get()
        let ours = String(decoding: Rewrite.request(input, head, requestIDLine: Array("X-Request-ID: 0123abcd\r\n".utf8)), as: UTF8.self)
        #expect(ours == "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: http\r\nX-Request-ID: 0123abcd\r\nX-Forwarded-Host: a\r\n\r\n")
        let off = String(decoding: Rewrite.request(input, head), as: UTF8.self)
        #expect(off == "GET / HTTP/1.1\r\nHost: a\r\nX-Request-ID: one\r\nx-request-id: two\r\nX: 1\r\nX_Request__ID-: three\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: a\r\n\r\n")
    }

    /// (input, close, keepAlive10, dechunk, forwarded).
    static let responses: [(String, Bool, Bool, Bool, String)] = [
        ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nX: y\r\n\r\n", false, false, false,
         "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX: y\r\n\r\n"),
        ("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n", true, false, false,
         "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n"),
        ("HTTP/1.1 204 No Content\r\n\r\n", false, true, false,
         "HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n"),
        ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n", false, false, false,
         "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", false, false, false,
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
        // RFC 9112 §6.3: the Content-Length that Transfer-Encoding overrides is removed.
        ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", true, false, false,
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X\r\nX: 1\r\n\r\n", false, false, true,
         "HTTP/1.1 200 OK\r\nX: 1\r\n\r\n"),
        ("HTTP/1.1 200\r\nUpgrade: h2\r\nProxy-Connection: x\r\nTE: x\r\n\r\n", true, false, false,
         "HTTP/1.1 200\r\nConnection: close\r\n\r\n"),
        // No body whatever the fields say: the framing fields a server must not send are dropped
        // (found by the head-rewriter fuzzer); a 304 keeps its Content-Length (the GET's size).
        ("HTTP/1.0 199 OK\r\nTransfer-Encoding: chukned\r\n\r\n", false, false, false,
         "HTTP/1.1 199 OK\r\n\r\n"),
        ("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\nContent-Length: 0\r\nConnection: X-Hop\r\nX-Hop: 1\r\n\r\n", false, false, false,
         "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"),
        ("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n", false, false, false,
         "HTTP/1.1 204 No Content\r\n\r\n"),
        ("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nETag: \"e\"\r\n\r\n", false, false, false,
         "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nETag: \"e\"\r\n\r\n"),
    ]

    @Test("a 101 that starts a tunnel keeps the protocol chosen, with Connection: upgrade and no framing fields")
    func switching() throws {
        let input = Array("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade, X-Hop\r\nX-Hop: 1\r\nSec-WebSocket-Accept: a\r\nContent-Length: 5\r\n\r\n".utf8)
        let head = try Rewrite.parse(input, kind: .response).get()
        let out = String(decoding: Rewrite.response(input, head, close: false, switching: true), as: UTF8.self)
        #expect(out == "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: a\r\nConnection: upgrade\r\n\r\n")
        let plain = String(decoding: Rewrite.response(input, head, close: false), as: UTF8.self)
        #expect(!plain.lowercased().contains("upgrade"))
    }

    @Test("response heads forwarded to a client", arguments: responses)
    func response(_ c: (String, Bool, Bool, Bool, String)) throws {
        let input = Array(c.0.utf8)
        let head = try Rewrite.parse(input, kind: .response).get()
        let out = String(decoding: Rewrite.response(input, head, close: c.1, keepAlive10: c.2, dechunk: c.3), as: UTF8.self)
        #expect(out == c.4, "\(c.0.debugDescription)\n got \(out.debugDescription)\nwant \(c.4.debugDescription)")
    }
}
