import Foundation

/// SplitMix64: a small seeded generator, so a failing run can be replayed from its seed.
struct SeededRandom {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func int(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    /// True `percent` times in 100.
    mutating func chance(_ percent: Int) -> Bool { int(100) < percent }
    mutating func pick<T>(_ a: [T]) -> T { a[int(a.count)] }
}

/// Makes HTTP/1.1 messages, valid, ambiguous and hostile: odd and repeated Content-Length,
/// Transfer-Encoding lists, names a lenient reader takes for framing fields, obs-fold, bare LF,
/// Connection options, pipelined pairs, chunk extensions, absolute-form targets, HTTP/1.0.
struct MessageGenerator {
    var r: SeededRandom

    enum Body { case none, length(Int), chunked }

    static let lookalikes = ["Content_Length: 3", "Transfer--Encoding: chunked", "transfer_encoding: chunked", "X_Forwarded_For: 6.6.6.6",
                             "Content-Length_: 2", "HOST_: evil", "x-forwarded--host: evil", "Connection_: close", "-Transfer-Encoding: chunked"]
    static let connectionOptions = ["close", "keep-alive", "X-Hop", "content-length", "Transfer-Encoding", "host", "x-forwarded-for",
                                    "close, X-Hop", "upgrade", "x_forwarded_proto", "keep-alive, ,X-Hop"]
    static let odd = ["Content-Length : 5", "X : 1", "X-Sp:  spaced  ", "X-Tab:\tv", "X-High: \u{e9}", "X-Empty:", "Expect: 100-continue",
                      "Keep-Alive: 5", "TE: trailers", "Upgrade: h2c", "Upgrade: websocket", "Upgrade: websocket, h2c/1", "Proxy-Connection: keep-alive", "X-Forwarded-For: 1.2.3.4",
                      "X-Forwarded-Proto: https", "X-Forwarded-Host: evil", "Trailer: T", "X-Request-ID: ok-1", "X-Request-ID: not ok",
                      "X-Request-Id: 0f8fad5b", "X_Request_ID: lookalike"]

    /// `n` bytes of body (ASCII, so as many characters' bytes), sometimes a request in disguise.
    mutating func bodyBytes(_ n: Int) -> String {
        let smuggled = Array("GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n".utf8)
        if r.chance(10) && n >= smuggled.count { return String(decoding: smuggled + Array(repeating: UInt8(ascii: "z"), count: n - smuggled.count), as: UTF8.self) }
        let alphabet = Array("abcdefghij0123456789 \r\n:;".utf8)
        return String(decoding: (0..<n).map { _ in r.pick(alphabet) }, as: UTF8.self)
    }

    /// A chunked body, sometimes with extensions, trailers, uppercase hex, or damage.
    mutating func chunked() -> String {
        var s = ""
        for _ in 0..<r.int(3) {
            let n = 1 + r.int(12)
            var size = String(n, radix: 16, uppercase: r.chance(30))
            if r.chance(10) { size = "0" + size }
            s += size
            if r.chance(25) { s += r.pick([";a=b", ";q=\"x y\"", " ;e", ";x", ";a=b;c"]) }
            s += "\r\n" + bodyBytes(n) + "\r\n"
        }
        s += "0"
        if r.chance(10) { s += ";last" }
        s += "\r\n"
        if r.chance(15) { s += "T: 1\r\n" }
        s += "\r\n"
        if r.chance(5) { s = r.pick([s.replacingOccurrences(of: "\r\n", with: "\n"), String(s.dropLast(2)), "zz\r\n" + s, s + "junk"]) }
        return s
    }

    /// Header lines and the body for `body`, with the framing fields in any of their forms.
    mutating func framing(_ body: Body) -> ([String], String) {
        switch body {
        case .none:
            return (r.chance(10) ? ["Content-Length: 0"] : [], "")
        case .length(let n):
            var lines = ["Content-Length: \(n)"]
            switch r.int(20) {
            case 0, 1: lines.append("Content-Length: \(n)")
            case 2, 3: lines = [r.pick(["Content-Length: \(n), \(n)", "Content-Length: \(n),\(n)", "Content-Length: \(n) , \(n)"])]
            case 4: lines.append("Content-Length: \(n + 1)")
            case 5: lines = [r.pick(["Content-Length: +\(n)", "Content-Length: \(n)x", "Content-Length: 0\(n)", "Content-Length: \(n),", "Content-Length: \(n), \(n + 1)"])]
            case 6: lines.append("Transfer-Encoding: chunked")
            default: break
            }
            var b = bodyBytes(n)
            if r.chance(5) { b = r.chance(50) ? String(b.dropLast()) : b + "x" }
            return (lines, b)
        case .chunked:
            var lines = [r.pick(["Transfer-Encoding: chunked", "Transfer-Encoding: chunked", "Transfer-Encoding: chunked", "Transfer-Encoding: gzip, chunked",
                                 "Transfer-Encoding: Chunked", "Transfer-Encoding: chunked, ", "Transfer-Encoding: , chunked",
                                 "Transfer-Encoding: gzip,,chunked", "Transfer-Encoding: chunked, chunked", "Transfer-Encoding: xchunked",
                                 "Transfer-Encoding: identity", "Transfer-Encoding:  chunked  "])]
            if r.chance(5) { lines.append("Transfer-Encoding: chunked") }
            return (lines, chunked())
        }
    }

    /// Hostile or odd additions to a head's lines, and damage to its line endings.
    mutating func disturb(_ lines: inout [String]) {
        if r.chance(6) { lines.append(r.pick(Self.lookalikes)) }
        if r.chance(10) { lines.append("Connection: " + r.pick(Self.connectionOptions)); if r.chance(50) { lines.append("X-Hop: h") } }
        if r.chance(10) { lines.append(r.pick(Self.odd)) }
        for k in 0..<r.int(3) { lines.append("X-\(k): v\(r.int(100))") }
        if r.chance(20) { lines.shuffle(using: &self) }
        if r.chance(3), !lines.isEmpty { let i = r.int(lines.count); lines[i] += "\r\n folded" }
        if r.chance(3), !lines.isEmpty { let i = r.int(lines.count); lines[i] += "\n" + "X-Bare: 1" }
        if r.chance(2), !lines.isEmpty { let i = r.int(lines.count); lines[i] += "\r" + "X-CR: 1" }
    }

    /// One request; its method, for the response side.
    mutating func request() -> String {
        var method = r.pick(["GET", "GET", "GET", "POST", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
        if r.chance(3) { method = r.pick([String(repeating: "M", count: 32), String(repeating: "M", count: 33), "get", "PRI", "CONNECT"]) }
        var target = r.pick(["/", "/a/b?c=d", "/x", "/%2e%2e/y"])
        if r.chance(12) { target = r.pick(["http://a.example:8080/p?q", "http://h.example", "HTTPS://h.example?x=1", "http://u@h/", "http:///p", "http://h.example/a b"]) }
        if method == "OPTIONS" && r.chance(30) { target = "*" }
        let minor = r.chance(15) ? 0 : 1
        var lines: [String] = []
        switch r.int(30) {
        case 0: lines.append("Host: ")
        case 1: lines += ["Host: a.example", "Host: b.example"]
        case 2: break
        case 3: lines.append("Host: a b")
        default: lines.append(r.pick(["Host: a.example", "Host: a.example:81", "host: a.example"]))
        }
        let body: Body = ["POST", "PUT", "PATCH"].contains(method) || r.chance(5) ? r.pick([.length(r.int(40)), .chunked, .none]) : .none
        let (framingLines, b) = framing(body)
        lines += framingLines
        disturb(&lines)
        var line = "\(method) \(target) HTTP/1.\(minor)"
        if r.chance(2) { line = r.pick(["\(method)  \(target) HTTP/1.1", "\(method) \(target) HTTP/1.1 ", "\(method) \(target)"]) }
        var head = line + "\r\n" + lines.map { $0 + "\r\n" }.joined() + "\r\n"
        if r.chance(2) { head = head.replacingOccurrences(of: "\r\n", with: "\n") }
        if r.chance(2) { head = "\r\n" + head }
        return head + b
    }

    /// One or two pipelined requests.
    mutating func requestStream() -> [UInt8] {
        var s = request()
        if r.chance(20) { s += request() }
        return Array(s.utf8)
    }

    /// A response (with interim ones before it, sometimes), and bytes after it, sometimes.
    mutating func response() -> [UInt8] {
        var s = ""
        if r.chance(8) { s += r.pick(["HTTP/1.1 100 Continue\r\n\r\n", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"]) }
        let status = r.pick([200, 200, 200, 201, 204, 304, 404, 500])
        var line = r.pick(["HTTP/1.1 \(status) OK", "HTTP/1.1 \(status) OK", "HTTP/1.0 \(status) OK", "HTTP/1.1 \(status)"])
        if r.chance(2) { line = r.pick(["HTTP/1.1  200 OK", "HTTP/1.1 2000 OK", "HTTP/1.1 200 O\u{1}K"]) }
        let body: Body = r.pick([.length(r.int(40)), .length(r.int(40)), .chunked, .chunked, .none])
        var (lines, b) = framing(body)
        disturb(&lines)
        var head = line + "\r\n" + lines.map { $0 + "\r\n" }.joined() + "\r\n"
        if r.chance(2) { head = head.replacingOccurrences(of: "\r\n", with: "\n") }
        if r.chance(10) { b += r.pick(["HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "garbage"]) }
        return Array((s + head + b).utf8)
    }
}

extension MessageGenerator: RandomNumberGenerator {
    mutating func next() -> UInt64 { r.next() }
}
