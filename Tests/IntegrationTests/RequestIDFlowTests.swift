import Foundation
import Testing

/// X-Request-ID end to end (issue 8): what the backend receives, and the error log naming it.
@Suite("X-Request-ID through the proxy")
struct RequestIDFlowTests {
    /// The X-Request-ID values the demo backend received (it echoes the request head), read as a
    /// CGI-style backend reads names: `X_Request_ID` counts as one too.
    static func received(_ port: UInt16, _ extra: String = "", connection: String = "close") throws -> [String] {
        let r = try HTTP.request(port: port, "GET /?echo=1 HTTP/1.1\r\nHost: t\r\n\(extra)Connection: \(connection)\r\n\r\n")
        #expect(r.status == 200)
        return String(decoding: r.body, as: UTF8.self).split(separator: "\r\n").compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            let name = line[..<colon].lowercased().replacingOccurrences(of: "_", with: "-")
            return name == "x-request-id" ? String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces) : nil
        }
    }

    static func isOurs(_ v: String) -> Bool { v.count == 32 && v.allSatisfy { $0.isHexDigit && !$0.isUppercase } }

    @Test("the backend gets one X-Request-ID: the client's when valid, else a fresh one of 32 hex digits")
    func forwarded() throws {
        let be = try DemoBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port]))
        let a = try Self.received(gh.port), b = try Self.received(gh.port)
        #expect(a.count == 1 && Self.isOurs(a[0]) && b.count == 1 && Self.isOurs(b[0]) && a != b, "\(a) \(b)")
        #expect(try Self.received(gh.port, "X-Request-ID: 0f8fad5b-d9cb-469f-a165-70867728950e\r\n") == ["0f8fad5b-d9cb-469f-a165-70867728950e"])
        for bad in ["X-Request-ID: has space\r\n", "X-Request-ID: \(String(repeating: "a", count: 129))\r\n",
                    "X-Request-ID: a\r\nX-Request-ID: b\r\n", "X_Request_ID: lookalike\r\n"] {
            let got = try Self.received(gh.port, bad)
            #expect(got.count == 1 && Self.isOurs(got[0]), "\(bad.debugDescription) -> \(got)")
        }
        // A name a CGI-style backend reads as X-Request-ID is left out: only the real one counts.
        #expect(try Self.received(gh.port, "X-Request-ID: a\r\nX_Request_ID: b\r\n") == ["a"])
        // One the client named in Connection was for this hop only: not the request's id.
        let hop = try Self.received(gh.port, "X-Request-ID: mine\r\n", connection: "X-Request-ID, close")
        #expect(hop.count == 1 && Self.isOurs(hop[0]), "\(hop)")
    }

    @Test("request_id off: nothing added, the client's passes as it came")
    func off() throws {
        let be = try DemoBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port], top: "request_id off;"))
        #expect(try Self.received(gh.port).isEmpty)
        #expect(try Self.received(gh.port, "X-Request-ID: anything goes\r\n") == ["anything goes"])
    }

    @Test("the error log names the request's id")
    func logged() throws {
        let log = LogFile()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [1], top: "error_log \(log.path);"))
        let r = try HTTP.request(port: gh.port, "GET / HTTP/1.1\r\nHost: t\r\nX-Request-ID: trace-42\r\nConnection: close\r\n\r\n")
        #expect(r.status == 502)
        #expect(log.text.contains("request trace-42; answered 502"), "\(log.text)")
    }
}
