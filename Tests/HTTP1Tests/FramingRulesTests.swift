import Foundation
import HTTP1
import Testing

/// The rules that keep a message's framing from being hidden, doubled or misread (issue 6), each
/// as a table of whole messages with the verdict and status, also fed split at every byte.
@Suite("Framing rules")
struct FramingRulesTests {
    /// (message, status when refused or nil when accepted, messages framed when accepted).
    typealias Case = (String, Int?, Int)

    static let smuggling = "POST / HTTP/1.1\r\nHost: a\r\nConnection: content-length\r\nContent-Length: 45\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\nX-Evil: 1\r\n\r\n"

    static let connectionOptions: [Case] = [
        (smuggling, 400, 0),
        ("POST / HTTP/1.1\r\nHost: a\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, 0),
        ("GET / HTTP/1.1\r\nHost: a\r\nConnection: host\r\n\r\n", 400, 0),
        ("GET / HTTP/1.1\r\nHost: a\r\nConnection: close, X-Forwarded-For\r\n\r\n", 400, 0),
        ("GET / HTTP/1.1\r\nHost: a\r\nConnection: x-forwarded-proto\r\n\r\n", 400, 0),
        ("GET / HTTP/1.1\r\nHost: a\r\nConnection: X-FORWARDED-HOST\r\n\r\n", 400, 0),
        ("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nConnection: content-length\r\n\r\n", 400, 0),
        ("GET / HTTP/1.1\r\nHost: a\r\nConnection: content_length\r\n\r\n", 400, 0),
        ("GET / HTTP/1.1\r\nHost: a\r\nConnection: x-secret\r\nX-Secret: 1\r\n\r\n", nil, 1),
    ]

    static let contentLengths: [Case] = [
        // Lines repeating one value are one (forwarded once, neither connection reused); a list
        // in one line reads as 55 or 5 to a lenient parser (http-desync-guardian: Severe).
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", nil, 1),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello", 400, 0),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,5\r\n\r\nhello", 400, 0),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5, 5\r\n\r\nhello", 400, 0),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\nhello", 400, 0),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", 400, 0),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\nhello", 400, 0),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ,5\r\n\r\nhello", 400, 0),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 5\r\n\r\nhello", 400, 0),
    ]

    static let transferEncodings: [Case] = [
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, \r\n\r\n0\r\n\r\n", 400, 0),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked\r\n\r\n0\r\n\r\n", 400, 0),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip,,chunked\r\n\r\n0\r\n\r\n", 400, 0),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n0\r\n\r\n", 400, 0),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,\r\n\r\n0\r\n\r\n", 400, 0),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", nil, 1),
        // Several lines are one list (forwarded as one line); codings a lenient reader takes for
        // chunked are refused (found by the differential test).
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", nil, 1),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n", 400, 0),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked, chunked\r\n\r\n0\r\n\r\n", 400, 0),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n", 400, 0),
    ]

    static let lookalikeNames: [Case] = [
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer--Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400, 0),
        ("POST / HTTP/1.1\r\nHost: a\r\ncontent_length: 5\r\n\r\nhello", 400, 0),
        ("GET / HTTP/1.1\r\nHost: a\r\nX_Forwarded_For: 1.2.3.4\r\n\r\n", 400, 0),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer_-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, 0),
        ("GET / HTTP/1.1\r\nHost: a\r\nHOST_: b\r\n\r\n", 400, 0),
        ("GET / HTTP/1.1\r\nHost: a\r\n-Host: b\r\n\r\n", 400, 0),
        ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length-: 5\r\n\r\n", 400, 0),
        ("GET / HTTP/1.1\r\nHost: a\r\nCONTENT___LENGTH: 5\r\n\r\n", 400, 0),
        ("GET / HTTP/1.1\r\nHost: a\r\nx-forwarded--proto: https\r\n\r\n", 400, 0),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded_Host: b\r\n\r\n", 400, 0),
        ("GET / HTTP/1.1\r\nHost: a\r\nConnection_: close\r\n\r\n", 400, 0),
        ("GET / HTTP/1.1\r\nHost: a\r\n" + "Transfer" + String(repeating: "_", count: 300) + "Encoding: chunked\r\n\r\n", 400, 0),
        // Names that are plainly other fields pass.
        ("GET / HTTP/1.1\r\nHost: a\r\nContent-Type: x\r\nX-Forwarded-Port: 1\r\nHosts: b\r\nContent-Lengths: 3\r\nX_Request_Id: 1\r\n\r\n", nil, 1),
    ]

    static let hosts: [Case] = [
        ("GET / HTTP/1.1\r\nHost: \r\n\r\n", 400, 0),
        ("GET / HTTP/1.1\r\nHost:\r\n\r\n", 400, 0),
        ("GET / HTTP/1.0\r\nHost: \r\n\r\n", 400, 0),
        ("GET http://a.example:8080/p?q HTTP/1.1\r\nHost: b\r\n\r\n", nil, 1),
        ("GET http://a.example HTTP/1.1\r\nHost: b\r\n\r\n", nil, 1),
        ("GET https://a.example?q HTTP/1.1\r\nHost: b\r\n\r\n", nil, 1),
        ("GET http:///p HTTP/1.1\r\nHost: b\r\n\r\n", 400, 0),
        ("GET http://u@a/p HTTP/1.1\r\nHost: a\r\n\r\n", 400, 0),
        ("GET http://a.example/p HTTP/1.1\r\nHost: \r\n\r\n", 400, 0),
    ]

    static let methods: [Case] = [
        (String(repeating: "M", count: 32) + " / HTTP/1.1\r\nHost: a\r\n\r\n", nil, 1),
        (String(repeating: "M", count: 33) + " / HTTP/1.1\r\nHost: a\r\n\r\n", 501, 0),
        (String(repeating: "M", count: 9000) + " / HTTP/1.1\r\nHost: a\r\n\r\n", 501, 0),
        (String(repeating: "M", count: 40) + "\u{1} / HTTP/1.1\r\nHost: a\r\n\r\n", 501, 0),
        ("GET /" + String(repeating: "a", count: 9000) + "\u{1} HTTP/1.1\r\nHost: a\r\n\r\n", 414, 0),
        ("GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505, 0),
        ("GET / HTTP/1.x\r\nHost: a\r\n\r\n", 400, 0),
        ("GET / HTTP/1.1\r\nHost: a\r\n" + String(repeating: "X: y\r\n", count: 100) + "Bad Name: z\r\n\r\n", 431, 0),
        ("GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "b", count: 17000) + "\u{1}\r\n\r\n", 431, 0),
        ("GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "b", count: 16000) + "\u{1}" + String(repeating: "b", count: 1000) + "\r\n\r\n", 400, 0),
        ("GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "b", count: 17000) + "\n\r\n", 431, 0),
    ]

    static func check(_ c: Case, kind: HeadParser.Kind = .request) {
        let (o, split) = Split.everySplit(bytes(c.0), kind: kind)
        let text = String(c.0.debugDescription.prefix(200))
        if let status = c.1 {
            #expect(o.verdict == .reject && o.error?.status == status, "\(text): \(o)")
        } else {
            #expect(o.verdict == .accept && o.messages == c.2, "\(text): \(o)")
        }
        #expect(split == nil, "\(text): \(split ?? "")")
    }

    @Test("a Connection option naming a framing or forwarding field is refused", arguments: connectionOptions)
    func connection(_ c: Case) { Self.check(c) }

    @Test("repeated identical Content-Length lines are one; lists and differing values are refused", arguments: contentLengths)
    func contentLength(_ c: Case) { Self.check(c) }

    @Test("empty elements in Transfer-Encoding are refused; several lines are one list", arguments: transferEncodings)
    func transferEncoding(_ c: Case) { Self.check(c) }

    @Test("names a lenient server reads as framing or forwarding fields are refused", arguments: lookalikeNames)
    func lookalike(_ c: Case) { Self.check(c) }

    @Test("an empty Host is refused; an absolute-form target needs an authority", arguments: hosts)
    func host(_ c: Case) { Self.check(c) }

    @Test("the method token has a limit; limits answer the same whole or split", arguments: methods)
    func limits(_ c: Case) { Self.check(c) }

    static let responses: [Case] = [
        ("HTTP/1.1 200 OK\r\nConnection: content-length\r\nContent-Length: 2\r\n\r\nhi", 400, 0),
        ("HTTP/1.1 200 OK\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, 0),
        ("HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nhi", 400, 0),
        ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi", nil, 1),
        ("HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nhi", 400, 0),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, \r\n\r\n0\r\n\r\n", 400, 0),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 400, 0),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", nil, 1),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nuntil close", nil, 1),
        ("HTTP/1.1 200 OK\r\nTransfer--Encoding: chunked\r\nContent-Length: 2\r\n\r\nhi", 400, 0),
        ("HTTP/1.1 200 OK\r\nContent_Length: 2\r\n\r\nhi", 400, 0),
        ("HTTP/1.1 200 OK\r\nX-Forwarded-For_: 2\r\nContent-Length: 2\r\n\r\nhi", 400, 0),
        ("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi", nil, 1),
        ("HTTP/1.1 200 OK\r\nX: " + String(repeating: "b", count: 17000) + "\u{1}\r\n\r\n", 400, 0),
    ]

    @Test("responses: the same rules; the proxy answers 502 to a refused one", arguments: responses)
    func response(_ c: Case) { Self.check(c, kind: .response) }
}

/// Whole versus split feeding, comparing verdict, messages and status (not only the verdict).
enum Split {
    /// Every byte for a small case; for a large one (each drive copies, so all points would be
    /// quadratic) every byte near its ends and near the default limits, and a stride between.
    static func splitPoints(_ n: Int) -> [Int] {
        if n <= 2048 { return Array(0...n) }
        var points = Set(0...300).union(max(0, n - 300)...n).union(stride(from: 0, through: n, by: n / 300))
        for limit in [8 * 1024, 16 * 1024] where limit < n + 64 {
            points.formUnion(max(0, limit - 64)...min(n, limit + 64))
        }
        return points.sorted()
    }

    static func key(_ o: Outcome) -> String { "\(o.verdict) \(o.messages) \(o.error?.status ?? 0)" }

    /// Feeds whole, in two pieces split at every byte, and one byte at a time; returns the whole
    /// outcome and a description of the first feeding that answered differently.
    static func everySplit(_ b: [UInt8], kind: HeadParser.Kind, requestMethod: Method = .get, bytewise: Bool = true) -> (Outcome, String?) {
        let whole = drive(b, kind: kind, requestMethod: requestMethod)
        for s in splitPoints(b.count) {
            let o = drive(b, kind: kind, split: s, requestMethod: requestMethod)
            if key(o) != key(whole) { return (whole, "split at \(s): \(key(o)) vs whole \(key(whole))") }
        }
        if bytewise && b.count <= 2048 {
            let o = drive(b, kind: kind, arrivals: Array(0...b.count), requestMethod: requestMethod)
            if key(o) != key(whole) { return (whole, "byte at a time: \(key(o)) vs whole \(key(whole))") }
        }
        return (whole, nil)
    }
}

@Suite("Split invariance of every in-repo case")
struct SplitInvarianceTests {
    static var requestCases: [String] {
        RequestParserTests.accepted + RequestParserTests.rejected.map(\.0)
            + [FramingRulesTests.connectionOptions, FramingRulesTests.contentLengths, FramingRulesTests.transferEncodings,
               FramingRulesTests.lookalikeNames, FramingRulesTests.hosts, FramingRulesTests.methods].flatMap { $0.map(\.0) }
    }

    static let responseCases: [String] = FramingRulesTests.responses.map(\.0) + [
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nT: 1\r\n\r\n",
        "HTTP/1.1 200 OK\r\n\r\nall until close",
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 099 X\r\n\r\n", "HTTP/2.0 200 OK\r\n\r\n", "HTTP/1.1 200 O\u{1}K\r\n\r\n",
        "HTTP/1.1 200X\r\n\r\n", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", "HTTP/1.1 200 OK\rX\r\n\r\n",
    ]

    @Test("every in-repo request case: the same verdict and status whole, split anywhere, or byte by byte")
    func requests() {
        for text in Self.requestCases {
            let (_, split) = Split.everySplit(bytes(text), kind: .request)
            #expect(split == nil, "\(String(text.debugDescription.prefix(120))): \(split ?? "")")
        }
    }

    @Test("every in-repo response case: the same verdict and status however split")
    func responses() {
        for text in Self.responseCases {
            let (_, split) = Split.everySplit(bytes(text), kind: .response)
            #expect(split == nil, "\(String(text.debugDescription.prefix(120))): \(split ?? "")")
        }
    }

    @Test("the shared corpus (when present): the same verdict and status however split")
    func corpus() throws {
        let dir = corpusRoot + "/llhttp/requests"
        guard let files = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return }
        for file in files.sorted() {
            let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + file))
            let (_, split) = Split.everySplit(Array(data), kind: .request)
            #expect(split == nil, "\(file): \(split ?? "")")
        }
    }
}
