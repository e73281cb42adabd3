import Foundation
import Glibc
import Testing

/// The access log (issue 8 item 4): one line per request, forwarded or answered by the proxy
/// itself, in the text or the JSON format; the workers hand their lines to the supervisor, which
/// writes the file, without ever waiting for it.
@Suite("Access log", .serialized)
struct AccessLogTests {
    /// A gatehouse with `access_log` at `log` (and `extra` after the path), `workers`, `top`.
    static func start(_ backends: [UInt16], _ log: LogFile, _ extra: String = "", workers: Int = 1,
                      backendExtra: String = "", top: String = "") throws -> GatehouseProcess {
        try GatehouseProcess(config: GatehouseProcess.config(backends: backends, backendExtra: backendExtra,
                                                             top: "workers \(workers);\naccess_log \(log.path) \(extra);\n\(top)"))
    }

    /// Waits for `count` lines in `log` (no more come after: checked a moment later) and reads them.
    static func lines(_ log: LogFile, _ count: Int, json: Bool, within seconds: Double = 10) throws -> [AccessLine] {
        _ = eventually(seconds) { log.lines.count >= count }
        usleep(200_000)
        let text = log.lines
        #expect(text.count == count, "\(text.count) lines, \(count) requests:\n\(text.suffix(5).joined(separator: "\n"))")
        return try text.map { try AccessLine.parse($0, json: json) }
    }

    /// Sends `raw` on a connection of its own and reads until the proxy closes it: every byte it sent.
    static func exchange(_ port: UInt16, _ raw: String) throws -> [UInt8] {
        let c = try Conn(port: port)
        try c.send(raw)
        while try c.fill() {}
        return c.pending
    }

    static func status(_ bytes: [UInt8]) -> Int {
        Int(String(decoding: bytes.prefix(12), as: UTF8.self).split(separator: " ")[1]) ?? 0
    }

    @Test("both formats parse, and every field is what the client did; workers 1 runs under a supervisor for it",
          arguments: ["text", "json"])
    func fields(_ format: String) throws {
        let json = format == "json"
        let be = try DemoBackend()
        let log = LogFile()
        let gh = try Self.start([be.port], log, format)
        #expect(try eventually(3) { WorkersTests.children(of: gh.child.pid).count == 1 }, "one worker under the supervisor")
        for pid in [gh.child.pid] + WorkersTests.children(of: gh.child.pid) { #expect(WorkersTests.threads(pid) == 1) }

        let began = Date()
        let given = try Self.exchange(gh.port, "GET /?echo=1 HTTP/1.1\r\nHost: t\r\nX-Request-ID: client-id-1\r\nConnection: close\r\n\r\n")
        let made = try Self.exchange(gh.port, "GET /?echo=1&x=2 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        let madeID = try #require(String(decoding: made, as: UTF8.self).split(separator: "\r\n")
            .first { $0.lowercased().hasPrefix("x-request-id:") }.map { String($0.dropFirst(13)).trimmingCharacters(in: .whitespaces) })
        let post = try Self.exchange(gh.port, "POST /upload HTTP/1.0\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
        let quoted = try Self.exchange(gh.port, "GET /q?a=\"b\"\\c HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        let slow = try Self.exchange(gh.port, "GET /slow?delay_ms=150 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        let head = try Self.exchange(gh.port, "HEAD /h HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")

        let l = try Self.lines(log, 6, json: json)
        try #require(l.count == 6)
        let sent: [(method: String, target: String, proto: String, bytes: [UInt8])] = [
            ("GET", "/?echo=1", "HTTP/1.1", given), ("GET", "/?echo=1&x=2", "HTTP/1.1", made), ("POST", "/upload", "HTTP/1.0", post),
            ("GET", "/q?a=\"b\"\\c", "HTTP/1.1", quoted), ("GET", "/slow?delay_ms=150", "HTTP/1.1", slow), ("HEAD", "/h", "HTTP/1.1", head),
        ]
        for (line, s) in zip(l, sent) {
            #expect(line.client == "127.0.0.1")
            #expect(line.method == s.method && line.target == s.target && line.proto == s.proto, "\(line)")
            #expect(line.status == Self.status(s.bytes) && line.status == 200)
            #expect(line.bytes == s.bytes.count, "bytes_sent \(line.bytes), the client read \(s.bytes.count)")
            #expect(line.upstream == "127.0.0.1:\(be.port)" && line.connect != nil && line.response != nil && line.retries == 0)
            #expect(line.response! <= line.duration && line.tls == nil)
            #expect(abs(line.time.timeIntervalSince(began)) < 30)
        }
        #expect(l[0].id == "client-id-1", "the client's id, as the backend got it")
        #expect(l[1].id == madeID && madeID.count == 32, "the id the proxy made, as the backend got it")
        #expect(l[4].duration >= 0.15 && l[4].response! >= 0.15, "the backend's 150 ms: \(l[4])")
        #expect(l[1].connect! >= 0 && l[2].connect == 0, "a pooled connection takes no time to connect")
        #expect(try gh.metric("gatehouse_access_log_lines_total") == 6)
        #expect(try gh.metric("gatehouse_access_log_dropped_total") == 0)
    }

    @Test("answers the proxy makes itself get a line: 400 (request line -), 413, 502 from a dead backend, 504, 499 client gone")
    func proxyAnswers() throws {
        let log = LogFile()
        let dead = try Self.start([1], log, top: "limits { max_body_bytes 10; }")
        #expect(Self.status(try Self.exchange(dead.port, "GET / HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n")) == 400)
        #expect(Self.status(try Self.exchange(dead.port, "POST /big HTTP/1.1\r\nHost: t\r\nX-Request-ID: big-1\r\nContent-Length: 100\r\n\r\n")) == 413)
        #expect(Self.status(try Self.exchange(dead.port, "GET /dead HTTP/1.1\r\nHost: t\r\nX-Request-ID: dead-1\r\nConnection: close\r\n\r\n")) == 502)
        let l = try Self.lines(log, 3, json: false)
        try #require(l.count == 3)
        #expect(l[0].status == 400 && l[0].method == nil && l[0].upstream == nil && l[0].id == nil && l[0].bytes > 0, "\(l[0])")
        #expect(l[1].status == 413 && l[1].method == "POST" && l[1].target == "/big" && l[1].upstream == nil && l[1].id == "big-1", "\(l[1])")
        #expect(l[2].status == 502 && l[2].target == "/dead" && l[2].id == "dead-1", "\(l[2])")
        #expect(l[2].upstream == "127.0.0.1:1" && l[2].connect == nil && l[2].response == nil, "the server that failed, never connected: \(l[2])")

        let be = try DemoBackend()
        let log2 = LogFile()
        let gh = try Self.start([be.port], log2, "json", top: "timeouts { upstream_header 300ms; }")
        #expect(Self.status(try Self.exchange(gh.port, "GET /late?delay_ms=2000 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")) == 504)
        let gone = try Conn(port: gh.port)
        try gone.send("GET /gone?delay_ms=2000 HTTP/1.1\r\nHost: t\r\n\r\n")
        usleep(100_000)
        shutdown(gone.fd, Int32(SHUT_RDWR))
        let j = try Self.lines(log2, 2, json: true)
        try #require(j.count == 2)
        #expect(j[0].status == 504 && j[0].upstream == "127.0.0.1:\(be.port)" && j[0].connect != nil && j[0].response == nil, "\(j[0])")
        #expect(j[0].duration >= 0.3)
        #expect(j[1].status == 499 && j[1].target == "/gone?delay_ms=2000" && j[1].bytes == 0 && j[1].response == nil, "\(j[1])")
    }

    @Test("exactly one line per request under 2,000 concurrent clients (workers 2), each with its own target, id, status and bytes")
    func manyClients() throws {
        let be = try DemoBackend()
        let log = LogFile()
        let gh = try Self.start([be.port], log, "json", workers: 2)
        #expect(try eventually(3) { WorkersTests.children(of: gh.child.pid).count == 2 })
        let clients = try ManyClients(port: gh.port, count: 2000)
        var expected: [String: (target: String, bytes: Int)] = [:]
        for round in ["a", "b"] {
            let got = clients.exchange(timeout: 90) { "GET /\(round)\($0) HTTP/1.1\r\nHost: t\r\nX-Request-ID: \(round)-\($0)\r\n\r\n" }
            #expect(got.filter { $0.status == 200 }.count == 2000, "\(Dictionary(grouping: got.map(\.status), by: { $0 }).mapValues(\.count))")
            for (i, g) in got.enumerated() { expected["\(round)-\(i)"] = ("/\(round)\(i)", g.bytes) }
        }
        let lines = try Self.lines(log, 4000, json: true, within: 30)
        var seen = Set<String>()
        for l in lines {
            guard let id = l.id, let want = expected[id] else {
                Issue.record("a line for no request sent: \(l)")
                continue
            }
            #expect(seen.insert(id).inserted, "two lines for \(id)")
            #expect(l.target == want.target && l.status == 200 && l.bytes == want.bytes && l.upstream == "127.0.0.1:\(be.port)", "\(l)")
        }
        #expect(seen.count == 4000)
        #expect(try eventually(3) { try gh.metric("gatehouse_access_log_lines_total") == 4000 }, "summed over both workers")
        #expect(try gh.metric("gatehouse_access_log_dropped_total") == 0)
    }

    /// Milliseconds for each of `n` requests, one after another on `c`.
    static func timed(_ c: Conn, _ n: Int, _ path: String) throws -> [Double] {
        try (0..<n).map { i in
            let t = Date()
            try c.send("GET \(path)\(i) HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try c.readResponse().status == 200)
            return Date().timeIntervalSince(t) * 1000
        }
    }

    @Test("with the log's reader stalled (SIGSTOP), requests flow as fast and the lines that do not fit are dropped and counted; after SIGCONT lines flow again")
    func stalledReader() throws {
        let be = try DemoBackend()
        let log = LogFile()
        let gh = try Self.start([be.port], log, "buffer=64k")
        let c = try Conn(port: gh.port)
        let before = try Self.timed(c, 300, "/before")
        _ = eventually(5) { log.lines.count == 300 }
        kill(gh.child.pid, SIGSTOP)
        defer { kill(gh.child.pid, SIGCONT) }
        let stalled = try Self.timed(c, 3000, "/stalled")
        let dropped = try gh.metric("gatehouse_access_log_dropped_total")
        #expect(dropped > 0, "a 64 KiB ring cannot hold 3,000 lines")
        #expect(try gh.metric("gatehouse_access_log_lines_total") == 3300)
        let median = { (v: [Double]) in v.sorted()[v.count / 2] }
        #expect(median(stalled) <= 2 * median(before) + 1, "median \(median(stalled)) ms stalled, \(median(before)) ms before")
        #expect(stalled.sorted()[stalled.count * 99 / 100] < 100, "p99 \(stalled.sorted()[stalled.count * 99 / 100]) ms")

        kill(gh.child.pid, SIGCONT)
        // Every line made is in the file or counted as dropped, none twice.
        #expect(try eventually(5) { Double(log.lines.count) == 3300 - dropped }, "\(log.lines.count) lines, \(dropped) dropped")
        #expect(try Self.timed(c, 1, "/after").count == 1)
        #expect(try eventually(5) { log.text.contains("/after0 ") }, "lines flow again")
        #expect(log.lines.count == Int(3301 - dropped))
        #expect(try gh.metric("gatehouse_access_log_dropped_total") == dropped)
    }

    @Test("SIGUSR1 after the file was moved away: new lines go to a new file at the path; SIGTERM loses none")
    func reopen() throws {
        let be = try DemoBackend()
        let log = LogFile()
        let gh = try Self.start([be.port], log)
        #expect(try HTTP.get(port: gh.port, "/before").status == 200)
        #expect(try eventually(5) { log.text.contains("/before ") })
        let moved = log.path + ".1"
        defer { try? FileManager.default.removeItem(atPath: moved) }
        try FileManager.default.moveItem(atPath: log.path, toPath: moved)
        gh.child.signal(SIGUSR1)
        #expect(try eventually(5) { FileManager.default.fileExists(atPath: log.path) })
        #expect(try HTTP.get(port: gh.port, "/after").status == 200)
        #expect(try eventually(5) { log.text.contains("/after ") })
        let old = (try? String(contentsOfFile: moved, encoding: .utf8)) ?? ""
        #expect(old.contains("/before ") && !old.contains("/after "), "\(old)")
        #expect(!log.text.contains("/before "))

        #expect(try HTTP.get(port: gh.port, "/last").status == 200)
        gh.child.signal(SIGTERM)
        #expect(gh.child.waitExit(timeout: 10) == 0)
        #expect(log.text.contains("/last "), "written before the supervisor exits")
    }

    @Test("a request that failed over names the server that answered, with retries=1")
    func failover() throws {
        let be = try DemoBackend()
        let log = LogFile()
        let gh = try Self.start([1, be.port], log)
        for i in 0..<2 { #expect(try HTTP.get(port: gh.port, "/f\(i)").status == 200) }
        let l = try Self.lines(log, 2, json: false)
        try #require(l.count == 2)
        let failovers = try gh.metric("gatehouse_retries_total{reason=\"failover\"}")
        #expect(failovers >= 1 && Double(l.map(\.retries).reduce(0, +)) == failovers, "\(l)")
        for line in l { #expect(line.upstream == "127.0.0.1:\(be.port)" && line.connect != nil && line.response != nil, "\(line)") }
    }

    @Test("a TLS client's line names its protocol version")
    func tlsVersion() throws {
        let be = try DemoBackend()
        let log = LogFile()
        let gh = try GatehouseProcess(config: TLSFixture.config(backend: be.port, top: "access_log \(log.path) json;"))
        for v in ["--tlsv1.2 --tls-max 1.2", "--tlsv1.3"] {
            #expect(try sh("curl -sk --http1.1 \(v) -o /dev/null -w '%{http_code}' https://127.0.0.1:\(gh.port)/t").output == "200")
        }
        let l = try Self.lines(log, 2, json: true)
        #expect(l.map(\.tls) == ["TLSv1.2", "TLSv1.3"])
    }

    @Test("an access_log that cannot be opened stops the start, and fails --check, with the path and the reason")
    func unwritable() throws {
        let conf = "/tmp/gh-accesslog-\(getpid()).conf"
        let r = try sh("printf 'access_log /nonexistent-dir/a.log json;\\nmetrics off;\\nbackend b { server 127.0.0.1:1; }\\nserver { listen 127.0.0.1:0; proxy_pass b; }\\n' > \(conf); "
                       + "\(binDir)/gatehouse -c \(conf); echo status=$?; \(binDir)/gatehouse --check -c \(conf); echo check=$?; rm -f \(conf)")
        #expect(r.output.contains("access_log /nonexistent-dir/a.log: No such file or directory"), "\(r.output)")
        #expect(r.output.contains("status=1") && r.output.contains("check=1"), "\(r.output)")
    }
}
