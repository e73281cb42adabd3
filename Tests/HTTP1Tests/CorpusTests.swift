import Foundation
import HTTP1
import Testing

/// Whether ../shared/corpus is beside the checkout (CI provides it; a bare clone has none).
let corpusPresent: Bool = {
    var isDirectory: ObjCBool = false
    return FileManager.default.fileExists(atPath: corpusRoot, isDirectory: &isDirectory) && isDirectory.boolValue
}()

/// Replays ../shared/corpus (see its SOURCES.md), an addition to the in-repo parser tests: without
/// the folder the suite reports itself skipped, never passed. Every case is also fed split at every
/// byte boundary, and the split must never change the verdict. Where our strict policy differs from
/// the lenient source parser on purpose, the case is listed in a deviation table with the reason.
@Suite("Shared HTTP corpus", .enabled(if: corpusPresent, "no ../shared/corpus beside the checkout: the shared corpus replay is skipped (the in-repo parser tests still run)"))
struct CorpusTests {
    static func tsv(_ path: String) -> [[String: String]] {
        guard let text = try? String(contentsOfFile: corpusRoot + "/" + path, encoding: .utf8) else { return [] }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: true).map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
        let header = lines.removeFirst()
        return lines.map { row in
            var d: [String: String] = [:]
            for (i, k) in header.enumerated() where i < row.count { d[k] = row[i] }
            return d
        }
    }

    /// Cases where strict RFC 9112 policy answers differently from llhttp's lenient default, on purpose.
    static let llhttpDeviations: [String: String] = Self.loadDeviations()

    static func loadDeviations() -> [String: String] {
        let rtsp = "not HTTP: RTSP/ICE versions are refused (RFC 9112 §2.3 names HTTP-version only)"
        let lateLine = "refused when the line ends instead of mid-line; nothing is forwarded either way"
        return [
            "invalid-034-http-protocol-and-announce-method.http": "ANNOUNCE is a valid extension method token (RFC 9110 §9.1)",
            "method-058-m-search-request.http": "asterisk-form is only for OPTIONS (RFC 9112 §3.2.4)",
            "method-065-source-request-with-ice.http": rtsp,
            "method-066-options-request-with-rtsp.http": rtsp,
            "method-067-announce-request-with-rtsp.http": rtsp,
            "sample-080-no-http-version.http": "HTTP/0.9 requests are refused",
            "method-068-pri-request-http2.http": "the HTTP/2 preface is refused on an HTTP/1.1 listener",
            "content-length-019-error-on-content-length-overflow.http": lateLine,
            "content-length-020-error-on-duplicate-content-length.http": lateLine,
            "invalid-048-invalid-http-version.http": lateLine,
            "transfer-encoding-103-post-with-chunked-as-last-transfer-encoding-multiple-headers.http": "two Transfer-Encoding lines are refused: a backend reading only one of them frames otherwise",
            "uri-119-host-port-and-basic-auth.http": "userinfo in an absolute-form target is refused (RFC 9110 §4.2.4); its authority becomes Host",
        ]
    }

    /// RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without Host; llhttp does not check.
    static func isMissingHost(_ o: Outcome) -> Bool {
        o.verdict == .reject && o.error == .badRequest("missing Host")
    }

    static func matches(_ expect: String, _ o: Outcome, messages: Int?) -> Bool {
        switch expect {
        case "accept":
            // llhttp also "accepts" a stream that ends inside the next message: same count, rest pending.
            if let m = messages, m > 0, o.verdict == .incomplete, o.messages == m { return true }
            return o.verdict == .accept && (messages == nil || o.messages == messages)
        case "reject": return o.verdict == .reject && (messages == nil || o.messages == messages)
        case "incomplete": return o.verdict == .incomplete
        case "upgrade":
            // Connection: upgrade is seen (the proxy tunnels only after a 101), CONNECT is refused with 501, PRI with 505.
            return o.verdict == .upgrade || (o.verdict == .reject && (o.error?.status == 501 || o.error?.status == 505))
        default: return false
        }
    }

    @Test("llhttp request cases")
    func llhttp() throws {
        let rows = Self.tsv("llhttp/cases.tsv")
        try #require(rows.count >= 100, "corpus not found at \(corpusRoot)")
        var mismatches: [String] = []
        for row in rows {
            let file = row["file"]!
            let data = try Data(contentsOf: URL(fileURLWithPath: corpusRoot + "/llhttp/requests/" + file))
            let (o, split) = driveEverySplit(Array(data))
            #expect(split == nil, "\(file): verdict changed when split at byte \(split ?? -1)")
            let expect = row["expect"]!
            if !Self.matches(expect, o, messages: Int(row["messages_completed"] ?? "")) && !Self.isMissingHost(o) {
                mismatches.append("\(file)\t\(expect)\t\(o.verdict.rawValue) \(o.messages) \(o.error.map { "\($0.status) \($0.reason)" } ?? "")")
            }
        }
        let unexplained = mismatches.filter { Self.llhttpDeviations[String($0.split(separator: "\t")[0])] == nil }
        #expect(unexplained.isEmpty, "\n\(unexplained.joined(separator: "\n"))")
    }

    @Test("picohttpparser request, response and chunked cases")
    func pico() throws {
        let rows = Self.tsv("picohttpparser/cases.tsv")
        try #require(rows.count >= 70)
        var mismatches: [String] = []
        for row in rows {
            var data = hexBytes(row["bytes_hex"]!)
            let kind: HeadParser.Kind = row["kind"] == "response" ? .response : .request
            if row["kind"] == "chunked-body" {
                data = Array("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".utf8) + data
            }
            let (o, split) = driveEverySplit(data, kind: kind)
            #expect(split == nil, "\(row["id"]!): verdict changed when split at byte \(split ?? -1)")
            var expect = row["expect"]!
            // A response head without a length runs to close, so a complete head is a whole message for us.
            if kind == .response && expect == "accept" { expect = "accept" }
            if !Self.matches(expect, o, messages: nil) {
                mismatches.append("\(row["id"]!)\t\(row["kind"]!)\t\(expect)\t\(o.verdict.rawValue) \(o.error.map { "\($0.status) \($0.reason)" } ?? "")\t\(row["bytes_escaped"]!)")
            }
        }
        let unexplained = mismatches.filter { Self.picoDeviations[String($0.split(separator: "\t")[0])] == nil }
        #expect(unexplained.isEmpty, "\n\(unexplained.joined(separator: "\n"))")
    }

    static let picoDeviations: [String: String] = [
        "pico-005": "obs-fold is refused (RFC 9112 §5.2 allows rejecting it)",
        "pico-038": "obs-fold is refused in responses too (the proxy answers 502)",
        "pico-030": "raw bytes above 0x7F in the request-target are refused (RFC 3986)",
        "pico-034": "exactly one SP between request-line parts (RFC 9112 §3); lenient splitting is a desync vector",
        "pico-063": "exactly one SP in the status line (RFC 9112 §4)",
        "pico-050": "bare LF is refused at once instead of waiting",
        "pico-064": "picohttpparser stops before the trailer section; we wait for its final CRLF",
        "pico-065": "picohttpparser stops before the trailer section; we wait for its final CRLF",
        "pico-066": "picohttpparser stops before the trailer section; we wait for its final CRLF",
        "pico-067": "picohttpparser stops before the trailer section; we wait for its final CRLF",
        "pico-069": "picohttpparser stops before the trailer section; we wait for its final CRLF",
        "pico-071": "a 16-hex-digit chunk size is refused as too large instead of awaited",
    ]

    static let otherHeaders: Set<String> = ["contentEnc", "encode", "badwrap"]

    @Test("Transfer-Encoding permutations never frame by Content-Length")
    func smuggler() throws {
        let rows = Self.tsv("portswigger-http-request-smuggler/te-permutations-h1.tsv")
        try #require(rows.count >= 50)
        var bad: [String] = []
        for row in rows {
            let header = hexBytes(row["header_bytes_hex"]!)
            let msg = Array("POST / HTTP/1.1\r\nHost: a\r\n".utf8) + header + Array("\r\nContent-Length: 5\r\n\r\n0\r\n\r\n".utf8)
            let (o, split) = driveEverySplit(msg)
            #expect(split == nil)
            // Either refused, or the permutation is plainly another header that no server reads as framing.
            if o.verdict != .reject && !Self.otherHeaders.contains(row["technique"]!) {
                bad.append("\(row["technique"]!)\t\(o.verdict.rawValue)\t\(row["header_escaped"]!)")
            }
        }
        #expect(bad.isEmpty, "\n\(bad.joined(separator: "\n"))")
    }
}
