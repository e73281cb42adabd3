import HTTP1
@testable import Proxy
import Testing

/// Whatever the proxy forwards, a deliberately lenient reader (`LenientParser`) must frame into
/// exactly the messages the proxy framed: same count, same method and target (or status), same
/// body bytes, one Host and the proxy's own forwarding fields. The inputs are generated from a
/// fixed seed (valid, ambiguous and hostile: `MessageGenerator`); each goes through what the proxy
/// does with it (`HeadParser` → `BodyFramer` → `HeadRewriter` plus the body bytes as
/// Forwarding.swift sends them: raw, chunked stays chunked; decoded for an HTTP/1.0 client).
@Suite("Differential: proxy versus a lenient reader")
struct DifferentialTests {
    static let rounds = 12_000

    /// A message as the proxy framed it.
    struct Framed {
        var method = ""
        var target = ""
        var host = ""
        var hostFromClient = true
        var status = 0
        var rawBody: [UInt8] = []
        var payload: [UInt8] = []
    }

    /// The payload of a body framed as `framing`, decoded by the proxy's own framer.
    static func payload(_ framing: Framing, _ raw: [UInt8]) -> [UInt8] {
        if framing == .untilClose { return raw }
        var f = BodyFramer(framing)
        var out: [UInt8] = []
        var off = 0
        raw.withUnsafeBytes { buf in
            while off <= buf.count {
                switch f.next(UnsafeRawBufferPointer(rebasing: buf[off...])) {
                case .data(let o, let c, let used): out += buf[(off + o)..<(off + o + c)]; off += used
                case .framing(let used): off += used
                case .end, .needMore, .error: return
                }
            }
        }
        return out
    }

    /// The origin-form target and the Host a backend should see, read from the client's request line.
    static func expectedTarget(_ target: String) -> (target: String, authority: String?) {
        let lower = target.lowercased()
        guard lower.hasPrefix("http://") || lower.hasPrefix("https://") else { return (target, nil) }
        let rest = target.dropFirst(lower.hasPrefix("http://") ? 7 : 8)
        let end = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let path = String(rest[end...])
        return (path.isEmpty || path.hasPrefix("?") ? "/" + path : path, String(rest[..<end]))
    }

    /// What the proxy forwards for a client's byte stream (arriving in one read, then EOF).
    static func proxyRequests(_ input: [UInt8]) -> (forwarded: [UInt8], framed: [Framed], refused: Bool, partial: Bool) {
        var forwarded: [UInt8] = []
        var framed: [Framed] = []
        var base = 0
        var parser = HeadParser(kind: .request)
        var ids = RequestIDSource()
        let idLine = RequestID.makeLineBuffer()
        defer { idLine.deallocate() }
        while base < input.count {
            parser.reset()
            let slice = Array(input[base...])
            switch slice.withUnsafeBytes({ parser.parse($0) }) {
            case .needMore: return (forwarded, framed, false, false)
            case .error: return (forwarded, framed, true, false)
            case .complete: break
            }
            let head = parser.head
            var framer = BodyFramer(head.requestFraming)
            let scan = slice[head.end...].withUnsafeBytes { framer.scan($0) }
            if scan.error != nil { return (forwarded, framed, true, false) }
            let raw = Array(slice[head.end..<(head.end + scan.consumed)])
            // The X-Request-ID line as the session makes it (the client's when valid, else ours).
            let n = slice.withUnsafeBytes { b in RequestID.line(into: idLine, head: head, bytes: b.baseAddress!, source: &ids) }
            forwarded += Rewrite.request(slice, head, requestIDLine: Array(idLine[0..<n])) + raw
            if !scan.done { return (forwarded, framed, false, true) }  // the client's EOF aborts it
            let text = slice.withUnsafeBytes { $0.string(head.target) }
            let (target, authority) = expectedTarget(text)
            let clientHost = head.headers.first(where: { $0.kind == .host }).map { h in slice.withUnsafeBytes { $0.string(h.value) } }
            framed.append(Framed(method: slice.withUnsafeBytes { $0.string(head.method) }, target: target,
                                 host: authority ?? clientHost ?? "backend:80", hostFromClient: authority != nil || clientHost != nil,
                                 rawBody: raw, payload: payload(head.requestFraming, raw)))
            base += head.end + scan.consumed
            if !head.keepAlive { break }
        }
        return (forwarded, framed, false, false)
    }

    /// Why the lenient reading of what the proxy forwarded differs from what the proxy framed.
    static func compareRequests(_ forwarded: [UInt8], _ framed: [Framed], partial: Bool) -> String? {
        var lenient = LenientParser(forwarded)
        let (seen, exact) = lenient.requests()
        if seen.count != framed.count { return "lenient framed \(seen.count) requests, proxy \(framed.count)" }
        if !partial && !exact { return "bytes left after the last request" }
        for (m, f) in zip(seen, framed) {
            if m.method != f.method || m.target != f.target { return "request line \(m.method) \(m.target), proxy \(f.method) \(f.target)" }
            if m.rawBody != f.rawBody || m.payload != f.payload { return "body differs for \(f.method) \(f.target)" }
            if m.values("host") != [f.host] { return "Host \(m.values("host")), proxy \(f.host)" }
            if m.values("x-forwarded-host") != (f.hostFromClient ? [f.host] : []) { return "X-Forwarded-Host \(m.values("x-forwarded-host"))" }
            let xff = m.values("x-forwarded-for")
            if xff.count != 1 || !xff[0].hasSuffix("10.0.0.1") { return "X-Forwarded-For \(xff)" }
            if m.values("x-forwarded-proto") != ["http"] { return "X-Forwarded-Proto \(m.values("x-forwarded-proto"))" }
            let ids = m.values("x-request-id")
            if ids.count != 1 || ids[0].isEmpty || ids[0].utf8.count > 128
                || !ids[0].utf8.allSatisfy({ b in (0x30...0x39).contains(b) || (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b) || Array("-_.:+/=@".utf8).contains(b) }) {
                return "X-Request-ID \(ids)"
            }
            if m.values("content-length").count > 1 || m.values("transfer-encoding").count > 1 { return "framing field repeated" }
        }
        return nil
    }

    @Test("requests: the lenient reader frames what the proxy forwards as the proxy framed it")
    func requests() {
        var gen = MessageGenerator(r: SeededRandom(state: 0x6A7E_4015_0000_0006))
        var accepted = 0, refused = 0, partial = 0, messages = 0
        var failures: [String] = []
        for i in 0..<Self.rounds {
            let input = gen.requestStream()
            let p = Self.proxyRequests(input)
            messages += p.framed.count
            if p.refused { refused += 1 } else if p.partial { partial += 1 } else if !p.framed.isEmpty { accepted += 1 }
            if let why = Self.compareRequests(p.forwarded, p.framed, partial: p.partial), failures.count < 5 {
                failures.append("#\(i) \(why)\n  in: \(String(decoding: input, as: UTF8.self).debugDescription)\n out: \(String(decoding: p.forwarded, as: UTF8.self).debugDescription)")
            }
        }
        print("differential requests: \(Self.rounds) streams, \(accepted) accepted whole, \(refused) refused, \(partial) forwarded in part, \(messages) requests forwarded")
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
        #expect(accepted >= Self.rounds / 3, "too few accepted to mean much: \(accepted)")
        #expect(refused >= Self.rounds / 20, "too few hostile inputs refused: \(refused)")
    }

    /// What the proxy sends a client for a backend's bytes (arriving in one read, then EOF).
    static func proxyResponse(_ input: [UInt8], method: Method, clientMinor: Int, clientKeepAlive: Bool) -> (forwarded: [UInt8], final: Framed?, refused: Bool, dechunked: Bool) {
        var forwarded: [UInt8] = []
        var base = 0
        var parser = HeadParser(kind: .response)
        var slice: [UInt8] = []
        while true {
            parser.reset()
            slice = Array(input[base...])
            switch slice.withUnsafeBytes({ parser.parse($0) }) {
            case .needMore, .error: return (forwarded, nil, true, false)
            case .complete: break
            }
            let status = parser.head.status
            if status >= 200 { break }
            if status == 101 { return (forwarded, nil, true, false) }
            if status != 100 { forwarded += slice[0..<parser.head.end] }
            base += parser.head.end
        }
        let h = parser.head
        let framing = h.responseFraming(requestMethod: method)
        let dechunk = framing == .chunked && clientMinor == 0
        let keep = clientKeepAlive && framing != .untilClose && !dechunk
        var f = BodyFramer(framing)
        let rest = Array(slice[h.end...])
        if dechunk {
            forwarded += Rewrite.response(slice, h, close: false, keepAlive10: false, dechunk: true)
            let body = Self.payload(.chunked, rest)
            forwarded += body
            let done = rest.withUnsafeBytes { f.scan($0) }
            return (forwarded, done.done ? Framed(status: h.status, payload: body) : nil, false, true)
        }
        let scan = rest.withUnsafeBytes { f.scan($0) }
        if scan.error != nil { return (forwarded, nil, true, false) }  // head and first bytes go out together: 502
        let head = Rewrite.response(slice, h, close: !keep && clientMinor == 1, keepAlive10: keep && clientMinor == 0, dechunk: false)
        let raw = Array(rest[0..<scan.consumed])
        forwarded += head + raw
        let complete = scan.done || f.eof()
        return (forwarded, complete ? Framed(status: h.status, rawBody: raw, payload: payload(framing, raw)) : nil, false, false)
    }

    @Test("responses: the lenient client frames what the proxy sends as the proxy framed it")
    func responses() {
        var gen = MessageGenerator(r: SeededRandom(state: 0x6A7E_4015_0000_0007))
        var accepted = 0, refused = 0, cut = 0
        var failures: [String] = []
        for i in 0..<Self.rounds {
            let input = gen.response()
            let method: Method = gen.r.chance(15) ? .head : .get
            let minor = gen.r.chance(15) ? 0 : 1
            let p = Self.proxyResponse(input, method: method, clientMinor: minor, clientKeepAlive: gen.r.chance(80))
            var lenient = LenientParser(p.forwarded)
            let (seen, exact) = lenient.responses(method: method == .head ? "HEAD" : "GET")
            var why: String?
            if let f = p.final {
                accepted += 1
                if seen.count != 1 { why = "lenient framed \(seen.count) responses, proxy 1" }
                else if seen[0].status != f.status { why = "status \(seen[0].status), proxy \(f.status)" }
                else if seen[0].payload != f.payload { why = "body differs" }
                else if !exact { why = "bytes left after the response" }
                else if seen[0].values("content-length").count > 1 || seen[0].values("transfer-encoding").count > 1 { why = "framing field repeated" }
            } else {
                if p.refused { refused += 1 } else { cut += 1 }
                // A cut HTTP/1.0 body ends by close: the client cannot tell, by design of HTTP/1.0.
                if !seen.isEmpty && !p.dechunked { why = "lenient framed \(seen.count) responses where the proxy sent none whole" }
            }
            if let why, failures.count < 5 {
                failures.append("#\(i) \(why) (\(method) HTTP/1.\(minor))\n  in: \(String(decoding: input, as: UTF8.self).debugDescription)\n out: \(String(decoding: p.forwarded, as: UTF8.self).debugDescription)")
            }
        }
        print("differential responses: \(Self.rounds) responses, \(accepted) relayed whole, \(refused) refused (502), \(cut) cut short")
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
        #expect(accepted >= Self.rounds / 3, "too few accepted to mean much: \(accepted)")
        #expect(refused >= Self.rounds / 20, "too few hostile inputs refused: \(refused)")
    }
}
