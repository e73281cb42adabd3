import Foundation
import Glibc
import Testing

/// The error log (issue 8): one line for each thing an operator must act on, with the server and
/// the client, and rate-limited so a failing backend cannot flood it.
@Suite("Error log")
struct ErrorLogTests {
    @Test("a backend refusing connections: one line for the failure (server, client, retried) and one for the server taken out of rotation")
    func upstreamFailureAndServerDown() throws {
        let log = LogFile()
        let good = try DemoBackend()
        // Port 1 refuses; round-robin tries it first.
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [1, good.port], backendExtra: "max_fails 1; fail_timeout 30s;",
                                                                       top: "error_log \(log.path);"))
        for i in 0..<10 { #expect(try HTTP.get(port: gh.port, "/r\(i)").status == 200) }
        let failures = log.lines(containing: "upstream connect failed")
        #expect(failures.count == 1, "\(log.lines)")
        let f = failures.first ?? ""
        #expect(f.contains("[error]") && f.contains("server 127.0.0.1:1 (backend b)") && f.contains("client 127.0.0.1") && f.contains("retrying"), "\(f)")
        #expect(f.contains("Connection refused"), "\(f)")
        let down = log.lines(containing: "taken out of rotation")
        #expect(down.count == 1, "\(log.lines)")
        #expect(down.first?.contains("server 127.0.0.1:1 (backend b) taken out of rotation for 30 s after 1 failures in a row (max_fails)") == true, "\(down)")
        #expect(log.lines(containing: "127.0.0.1:\(good.port)").isEmpty, "the good server is never blamed: \(log.lines)")
    }

    @Test("a server that comes back after being taken out: one line when it is out, one when a request succeeds on it again")
    func serverBackUp() throws {
        let log = LogFile()
        let good = try DemoBackend()
        var flaky: DemoBackend? = try DemoBackend()
        let port = flaky!.port
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [port, good.port], backendExtra: "max_fails 1; fail_timeout 1s;",
                                                                       top: "error_log \(log.path);\nlog_level notice;"))
        flaky = nil  // stopped: its port refuses now
        for i in 0..<4 { #expect(try HTTP.get(port: gh.port, "/a\(i)").status == 200) }
        #expect(log.lines(containing: "server 127.0.0.1:\(port) (backend b) taken out of rotation for 1 s after 1 failures in a row (max_fails), the last: connect failed").count == 1, "\(log.lines)")
        let back = try Child(binDir + "/gatehouse-backend", ["--listen", "127.0.0.1:\(port)"])
        _ = try back.waitForLine(containing: "listening on")
        usleep(1_100_000)  // fail_timeout passes
        for i in 0..<4 { #expect(try HTTP.get(port: gh.port, "/b\(i)").status == 200) }
        let up = log.lines(containing: "is back in rotation")
        #expect(up.count == 1, "\(log.lines)")
        #expect(up.first?.contains("[notice] server 127.0.0.1:\(port) (backend b) is back in rotation") == true, "\(up)")
    }

    @Test("SIGUSR1 reopens error_log after logrotate moved it away, in one process and through a supervisor to its workers",
          arguments: ["", "workers 2;"])
    func reopen(_ workers: String) throws {
        let log = LogFile()
        let rotated = log.path + ".1"
        defer { try? FileManager.default.removeItem(atPath: rotated) }
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [1], backendExtra: "max_fails 1000000;",
                                                                       top: "error_log \(log.path);\n\(workers)"))
        #expect(try HTTP.get(port: gh.port, "/before").status == 502)
        #expect(log.lines(containing: "upstream connect failed").count == 1)
        try FileManager.default.moveItem(atPath: log.path, toPath: rotated)
        gh.child.signal(SIGUSR1)
        // The reopen happens on the loop(s); a request made after it lands in the new file.
        var moved = false
        for i in 0..<50 where !moved {
            usleep(50_000)
            #expect(try HTTP.get(port: gh.port, "/after\(i)").status == 502)
            moved = !log.lines(containing: "upstream connect failed").isEmpty
        }
        #expect(moved, "nothing written to the reopened error_log")
        // Once every loop has had its turn, every line goes to the new file.
        usleep(300_000)
        for i in 0..<3 {
            let r = try HTTP.request(port: gh.port, "GET / HTTP/1.1\r\nHost: t\r\nX-Request-ID: late-\(i)\r\nConnection: close\r\n\r\n")
            #expect(r.status == 502)
        }
        let old = (try? String(contentsOfFile: rotated, encoding: .utf8)) ?? ""
        #expect(old.contains("upstream connect failed"), "the rotated file keeps what it had")
        #expect(!old.contains("request late-"), "lines after the reopen went to the rotated file")
        #expect(log.lines(containing: "request late-").count == 3, "\(log.lines)")
    }

    @Test("reaching max_connections writes one line per pause, however long it lasts")
    func connectionLimit() throws {
        let log = LogFile()
        let be = try DemoBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port], top: "error_log \(log.path);\nlimits { max_connections 1; }"))
        let a = try Conn(port: gh.port)
        try a.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try a.readResponse().status == 200)
        usleep(300_000)
        let paused = log.lines(containing: "accepting paused")
        #expect(paused.count == 1, "\(log.lines)")
        #expect(paused.first?.contains("1 client connections, limits.max_connections is 1") == true, "\(paused)")
        #expect(paused.first?.contains("[warning]") == true)
    }

    @Test("a failing backend under load writes a burst, then a line a second that counts those held back")
    func rateLimited() throws {
        let log = LogFile()
        // One server that refuses, never taken out (so every request fails on it).
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [1], backendExtra: "max_fails 1000000;", top: "error_log \(log.path);"))
        for i in 0..<200 { #expect(try HTTP.get(port: gh.port, "/f\(i)").status == 502) }
        let burst = log.lines(containing: "upstream connect failed")
        #expect(burst.count == 10, "a burst of 10: \(burst.count)")
        usleep(1_100_000)
        #expect(try HTTP.get(port: gh.port, "/after").status == 502)
        let next = log.lines(containing: "upstream connect failed")
        #expect(next.count == 11)
        #expect(next.last?.contains("(190 more like this held back)") == true, "\(next.last ?? "")")
        #expect(next.last?.contains("answered 502") == true)
    }

    @Test("an error_log that cannot be opened stops the start, and fails --check, with the path and the reason")
    func unwritable() throws {
        let r = try sh("printf 'error_log /nonexistent-dir/x.log;\\nmetrics off;\\nbackend b { server 127.0.0.1:1; }\\nserver { listen 127.0.0.1:0; proxy_pass b; }\\n' > /tmp/gh-errlog-\(getpid()).conf; "
                       + "\(binDir)/gatehouse -c /tmp/gh-errlog-\(getpid()).conf; echo status=$?; "
                       + "\(binDir)/gatehouse --check -c /tmp/gh-errlog-\(getpid()).conf; echo check=$?; rm -f /tmp/gh-errlog-\(getpid()).conf")
        #expect(r.output.contains("error_log /nonexistent-dir/x.log: No such file or directory"), "\(r.output)")
        #expect(r.output.contains("status=1") && r.output.contains("check=1"), "\(r.output)")
    }
}
