import Foundation
import HTTP1
import Testing

/// One case of aws/http-desync-guardian's tests (../shared/corpus/http-desync-guardian/*.yaml).
struct DesyncCase {
    var file = ""
    var name = ""
    var method = ""
    var uri = ""
    var version = ""
    var headers: [(name: String, value: String)] = []
    var tier = ""

    /// The request head as the upstream README says to build it.
    var bytes: [UInt8] {
        var s = Array("\(method) \(uri) \(version)\r\n".utf8)
        // The library checks framing only; an HTTP/1.1 request without Host is refused by RFC 9112
        // §3.2 before framing matters, so the cases get one where they have none.
        if version == "HTTP/1.1" && !headers.contains(where: { $0.name.lowercased() == "host" }) { s += Array("Host: a\r\n".utf8) }
        for h in headers { s += Array(h.name.utf8) + Array(": ".utf8) + Array(h.value.utf8) + [13, 10] }
        return s + [13, 10]
    }
}

/// Reads the test files' YAML: a list of mappings with scalar fields, a `headers` list of
/// name/value mappings and an `expected` mapping. Only that shape, which is all they use.
enum DesyncYAML {
    static func cases(_ text: String, file: String) -> [DesyncCase] {
        var out: [DesyncCase] = []
        var cur: DesyncCase?
        var inExpected = false
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = String(raw)
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("#") || trimmed.isEmpty { continue }
            let indent = line.prefix { $0 == " " }.count
            if indent == 0 && trimmed.hasPrefix("- ") {
                if let c = cur { out.append(c) }
                cur = DesyncCase(file: file)
                inExpected = false
            }
            guard var c = cur else { continue }
            var body = trimmed
            let listItem = body.hasPrefix("- ")
            if listItem { body.removeFirst(2) }
            guard let colon = body.firstIndex(of: ":") else { continue }
            let key = String(body[..<colon])
            let value = scalar(String(body[body.index(after: colon)...]).trimmingCharacters(in: .whitespaces))
            switch key {
            case "expected": inExpected = true
            case "headers": inExpected = false
            case "name" where indent == 0 || (indent == 2 && !listItem): c.name = value
            case "name" where listItem: c.headers.append((value, ""))
            case "value" where !c.headers.isEmpty: c.headers[c.headers.count - 1].value = value
            case "uri": c.uri = value
            case "method": c.method = value
            case "version": c.version = value
            case "tier" where inExpected: c.tier = value
            default: break
            }
            cur = c
        }
        if let c = cur { out.append(c) }
        return out
    }

    /// A YAML scalar: single-quoted ('' for '), double-quoted (with \x, \t, \r, \n, \\ and \"
    /// escapes, bytes as Latin-1), or plain.
    static func scalar(_ s: String) -> String {
        if s.hasPrefix("'") && s.hasSuffix("'") && s.count >= 2 {
            return String(s.dropFirst().dropLast()).replacingOccurrences(of: "''", with: "'")
        }
        guard s.hasPrefix("\"") && s.hasSuffix("\"") && s.count >= 2 else { return s }
        var out = ""
        var it = Array(s.unicodeScalars.dropFirst().dropLast()).makeIterator()
        while let ch = it.next() {
            guard ch == "\\", let e = it.next() else { out.unicodeScalars.append(ch); continue }
            switch e {
            case "t": out += "\t"
            case "r": out += "\r"
            case "n": out += "\n"
            case "0": out += "\0"
            case "x":
                let hex = String([it.next(), it.next()].compactMap { $0 }.map(Character.init))
                out.unicodeScalars.append(Unicode.Scalar(UInt8(hex, radix: 16) ?? 0))
            default: out.unicodeScalars.append(e)
            }
        }
        return out
    }
}

/// Replays http-desync-guardian's request cases through the request parser, whole and split at
/// every byte. Its tiers fit a pooled proxy: Severe must be refused; Ambiguous refused, or
/// forwarded with neither connection reused; Compliant forwarded; Acceptable either.
@Suite("Shared corpus: http-desync-guardian", .enabled(if: corpusPresent, "../shared/corpus is not beside the checkout"))
struct DesyncGuardianTests {
    static func load() -> [DesyncCase] {
        let dir = corpusRoot + "/http-desync-guardian"
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".yaml") }.sorted()
        return files.flatMap { f -> [DesyncCase] in
            guard let data = FileManager.default.contents(atPath: dir + "/" + f) else { return [] }
            return DesyncYAML.cases(String(decoding: data, as: UTF8.self), file: f)
        }
    }

    /// Compliant cases this strict proxy refuses on purpose, with the reason.
    static let deviations: [String: String] = [
        "TE with custom parameters OK": "chunked defines no parameters (RFC 9112 §7.1); \"chunked;x;\" reads as chunked to a lenient backend and as unknown to a strict one, so it is refused (400) rather than framed one way",
        "Transfer-Encoding with a param: chunked;custom_param": "as above",
        "International in URI": "raw bytes above 0x7F in the request-target are refused (RFC 3986 allows them only percent-encoded)",
        "Empty URI": "an empty request-target is not a request-target (RFC 9112 §3.2)",
    ]

    /// Whether the head is forwarded with both connections closed after it (how this proxy
    /// carries an Ambiguous message: as the library's README asks, never reused).
    static func forwardedWithoutReuse(_ bytes: [UInt8]) -> Bool {
        var p = HeadParser(kind: .request)
        guard bytes.withUnsafeBytes({ p.parse($0) }) == .complete else { return false }
        return p.head.ambiguous && !p.head.keepAlive
    }

    @Test("Severe refused, Ambiguous refused or forwarded without reuse, Compliant forwarded, whole and split at every byte")
    func tiers() throws {
        let cases = Self.load()
        try #require(cases.count >= 150, "found \(cases.count) cases under \(corpusRoot)")
        var wrong: [String] = []
        var counts: [String: Int] = [:]
        for c in cases {
            let bytes = c.bytes
            let whole = drive(bytes, kind: .request)
            for split in 1..<bytes.count where drive(bytes, kind: .request, split: split).verdict != whole.verdict {
                wrong.append("\(c.file) \(c.name): split at \(split) changes the verdict")
                break
            }
            // A head with a body framing but no body is a valid prefix: forwarded once the head is.
            let forwarded = whole.verdict == .accept || whole.verdict == .incomplete
            counts["\(c.tier) \(forwarded ? "forwarded" : "refused")", default: 0] += 1
            switch c.tier {
            case "Severe":
                if forwarded { wrong.append("\(c.file) \(c.name) [Severe]: forwarded") }
            case "Ambiguous":
                if forwarded && !Self.forwardedWithoutReuse(bytes) { wrong.append("\(c.file) \(c.name) [Ambiguous]: forwarded and the connections kept") }
            case "Compliant":
                if !forwarded && Self.deviations[c.name] == nil { wrong.append("\(c.file) \(c.name) [Compliant]: refused with \(whole.error.map { "\($0)" } ?? "?")") }
            default:
                break
            }
        }
        print("desync-guardian: \(cases.count) cases, \(counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))")
        #expect(wrong.isEmpty, "\(wrong.count) cases:\n\(wrong.joined(separator: "\n"))")
    }
}
