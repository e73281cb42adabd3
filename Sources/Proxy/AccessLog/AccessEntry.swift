import Config

/// What one access-log line says of a request, gathered at its end: numbers, and the bytes of its
/// text fields where they already lie (nothing is copied to make it).
struct AccessEntry {
    var client: String
    /// Empty when no request head was parsed (the request was refused as malformed or too large):
    /// the line then says `-` for the request.
    var method = UnsafeRawBufferPointer(start: nil, count: 0)
    var target = UnsafeRawBufferPointer(start: nil, count: 0)
    /// Only the first `AccessRecord.targetLimit` bytes of the target are logged, then `...`.
    var targetCut = false
    /// 0 or 1 for HTTP/1.x; `AccessRecord.http2` for a stream of an HTTP/2 connection.
    var versionMinor = 1
    /// The status the request is recorded with (as in `gatehouse_requests_total`).
    var status = 0
    var bytesSent = 0
    var duration: UInt64 = 0
    /// The server of the last attempt, nil when no server was tried.
    var upstream: String?
    /// Connecting to it (0 for a pooled connection), nil when no connection was made.
    var connect: UInt64?
    /// From the request sent to the response head, nil when no head came.
    var header: UInt64?
    var retries = 0
    /// The TLS version of the client connection, nil for plain HTTP.
    var tls: String?
    /// The X-Request-ID sent to the backend; empty with `request_id off` or before one was made.
    var requestID = UnsafeRawBufferPointer(start: nil, count: 0)

    init(client: String) { self.client = client }

    var hasRequestLine: Bool { !method.isEmpty }
}

/// The two line formats (README "Access log" documents them field by field).
extension AccessEntry {
    func write(_ format: AccessLogSettings.Format, into w: inout LineWriter, clock: LogClock) {
        switch format {
        case .text: writeText(into: &w, clock: clock)
        case .json: writeJSON(into: &w, clock: clock)
        }
    }

    /// `127.0.0.1 - [02/Dec/2026:18:37:49 +0000] "GET /x HTTP/1.1" 200 1234 0.052 upstream=127.0.0.1:9001
    /// connect=0.000 response=0.051 retries=0 tls=- id=4f0c…` (one line), `-` for what did not happen.
    func writeText(into w: inout LineWriter, clock: LogClock) {
        w.escaped(client, json: false)
        w.ascii(" - [")
        w.raw(clock.common)
        w.ascii("] \"")
        if hasRequestLine {
            w.escaped(method, json: false)
            w.byte(UInt8(ascii: " "))
            w.escaped(target, json: false)
            if targetCut { w.ascii("...") }
            w.ascii(versionMinor == 0 ? " HTTP/1.0" : versionMinor == AccessRecord.http2 ? " HTTP/2.0" : " HTTP/1.1")
        } else {
            w.byte(UInt8(ascii: "-"))
        }
        w.ascii("\" ")
        w.decimal(status)
        w.byte(UInt8(ascii: " "))
        w.decimal(bytesSent)
        w.byte(UInt8(ascii: " "))
        w.seconds(duration)
        w.ascii(" upstream=")
        if let u = upstream { w.escaped(u, json: false) } else { w.byte(UInt8(ascii: "-")) }
        w.ascii(" connect=")
        if let c = connect { w.seconds(c) } else { w.byte(UInt8(ascii: "-")) }
        w.ascii(" response=")
        if let h = header { w.seconds(h) } else { w.byte(UInt8(ascii: "-")) }
        w.ascii(" retries=")
        w.decimal(retries)
        w.ascii(" tls=")
        if let t = tls { w.escaped(t, json: false) } else { w.byte(UInt8(ascii: "-")) }
        w.ascii(" id=")
        if requestID.isEmpty { w.byte(UInt8(ascii: "-")) } else { w.escaped(requestID, json: false) }
    }

    /// One object a line, null for what did not happen; times in seconds with milliseconds.
    func writeJSON(into w: inout LineWriter, clock: LogClock) {
        w.ascii("{\"time\":\"")
        w.raw(clock.isoSeconds)
        w.byte(UInt8(ascii: "."))
        w.threeDigits(clock.millis)
        w.ascii("Z\",\"client\":")
        w.jsonString(client)
        if hasRequestLine {
            w.ascii(",\"method\":")
            w.jsonString(method)
            w.ascii(",\"target\":\"")
            w.escaped(target, json: true)
            if targetCut { w.ascii("...") }
            w.ascii(versionMinor == 0 ? "\",\"protocol\":\"HTTP/1.0\"" : versionMinor == AccessRecord.http2 ? "\",\"protocol\":\"HTTP/2.0\"" : "\",\"protocol\":\"HTTP/1.1\"")
        } else {
            w.ascii(",\"method\":null,\"target\":null,\"protocol\":null")
        }
        w.ascii(",\"status\":")
        w.decimal(status)
        w.ascii(",\"bytes_sent\":")
        w.decimal(bytesSent)
        w.ascii(",\"request_time\":")
        w.seconds(duration)
        w.ascii(",\"upstream_addr\":")
        if let u = upstream { w.jsonString(u) } else { w.ascii("null") }
        w.ascii(",\"upstream_connect_time\":")
        if let c = connect { w.seconds(c) } else { w.ascii("null") }
        w.ascii(",\"upstream_header_time\":")
        if let h = header { w.seconds(h) } else { w.ascii("null") }
        w.ascii(",\"retries\":")
        w.decimal(retries)
        w.ascii(",\"tls\":")
        if let t = tls { w.jsonString(t) } else { w.ascii("null") }
        w.ascii(",\"request_id\":")
        if requestID.isEmpty { w.ascii("null") } else { w.jsonString(requestID) }
        w.byte(UInt8(ascii: "}"))
    }
}

private extension LineWriter {
    mutating func jsonString(_ s: String) {
        byte(UInt8(ascii: "\""))
        escaped(s, json: true)
        byte(UInt8(ascii: "\""))
    }

    mutating func jsonString(_ p: UnsafeRawBufferPointer) {
        byte(UInt8(ascii: "\""))
        escaped(p, json: true)
        byte(UInt8(ascii: "\""))
    }
}
