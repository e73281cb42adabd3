import Foundation
import Glibc
import Testing

/// Hot reload (issue 8): SIGHUP or `gatehouse -s reload` reads the file again; a valid config
/// starts a new generation of workers on the same listening sockets and the old one drains; an
/// invalid one changes nothing and says why.
@Suite("Reload", .serialized)
struct ReloadTests {
    static func top(_ log: LogFile, _ extra: String = "") -> String { "workers 2;\nlog_level notice;\nerror_log \(log.path);\n\(extra)" }

    /// The 2xx requests counted so far.
    static let ok = "gatehouse_requests_total{backend=\"b\",status_class=\"2xx\"}"

    @Test("reload under load: wrk for 30 s through 10 reloads (a server added and removed, a timeout changed): every request answered, no socket error, a 2 s request across each reload completes, counters never go down", .enabled(if: Tool.wrk, Comment(rawValue: Tool.wrkMissing)))
    func underLoad() throws {
        let a = try DemoBackend()
        let b = try DemoBackend()
        let log = LogFile()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [a.port], top: Self.top(log)))
        let variants = [
            GatehouseProcess.config(backends: [a.port, b.port], top: Self.top(log)),
            GatehouseProcess.config(backends: [a.port], top: Self.top(log, "timeouts { upstream_header 20s; }")),
        ]
        let wrk = Process()
        wrk.executableURL = URL(fileURLWithPath: "/bin/sh")
        wrk.arguments = ["-c", "exec wrk -t1 -c32 -d30s --timeout 10s http://127.0.0.1:\(gh.port)/ 2>&1"]
        let out = Pipe()
        wrk.standardOutput = out
        try wrk.run()
        var last = 0.0
        for i in 0..<10 {
            usleep(500_000)
            let slow = try Conn(port: gh.port, timeout: 10)
            try slow.send("GET /?delay_ms=2000 HTTP/1.1\r\nHost: t\r\n\r\n")
            usleep(200_000)
            try variants[i % 2].write(toFile: gh.configPath, atomically: true, encoding: .utf8)
            gh.child.signal(SIGHUP)
            #expect(try eventually(5) { try gh.metric("gatehouse_config_generation") == Double(i + 2) }, "reload \(i + 1): \(log.text)")
            #expect(try slow.readResponse().status == 200, "the request in flight across reload \(i + 1)")
            let now = try gh.metric(Self.ok)
            #expect(now >= last, "the 2xx total went down across reload \(i + 1): \(last) then \(now)")
            last = now
        }
        wrk.waitUntilExit()
        let report = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(wrk.terminationStatus == 0, "\(report)")
        #expect(!report.contains("Socket errors") && !report.contains("Non-2xx"), "\(report)")
        let sent = report.split(separator: "\n").first { $0.contains("requests in") }.flatMap { Int($0.split(separator: " ").first ?? "") } ?? 0
        #expect(sent > 1000, "\(report)")
        #expect(try gh.metric("gatehouse_reloads_total{result=\"ok\"}") == 10)
        #expect(try gh.metric("gatehouse_reloads_total{result=\"failed\"}") == 0)
        #expect(log.text.components(separatedBy: "serves; generation").count == 11, "\(log.text)")
        // Every request wrk sent and each slow one, counted once across the generations.
        #expect(try eventually(3) { try gh.metric(Self.ok) >= Double(sent + 10) })
        // A worker killed after the reloads: its replacement takes its counts over.
        let before = try gh.metric(Self.ok)
        kill(WorkersTests.children(of: gh.child.pid)[0], SIGKILL)
        #expect(try eventually(3) { try WorkersTests.children(of: gh.child.pid).count == 2 && gh.metric("gatehouse_worker_restarts_total") == 1 })
        #expect(try gh.metric(Self.ok) >= before)
    }

    @Test("a broken config changes nothing and says why; -s reload through the pid file adds and removes listen addresses, keeps the sockets of the others; -s stop drains")
    func brokenThenListens() throws {
        let be = try DemoBackend()
        let log = LogFile()
        let pidPath = NSTemporaryDirectory() + "gatehouse-\(UUID().uuidString).pid"
        let base = GatehouseProcess.config(backends: [be.port], top: Self.top(log, "pid_file \(pidPath);"))
        let gh = try GatehouseProcess(config: base)
        #expect(try eventually(3) { WorkersTests.children(of: gh.child.pid).count == 2 })
        let first = WorkersTests.children(of: gh.child.pid)
        #expect(try String(contentsOfFile: pidPath, encoding: .utf8) == "\(gh.child.pid)\n")

        // Broken: refused with file, line and directive; the same workers serve on.
        try (base + "\nbogus 1;\n").write(toFile: gh.configPath, atomically: true, encoding: .utf8)
        gh.child.signal(SIGHUP)
        let line = (base + "\nbogus 1;\n").components(separatedBy: "\n").firstIndex(of: "bogus 1;")! + 1
        #expect(try eventually(3) { log.text.contains("reload refused: \(gh.configPath):\(line): directive \"bogus\": unknown directive; generation 1 serves on, nothing changed") }, "\(log.text)")
        #expect(try gh.metric("gatehouse_reloads_total{result=\"failed\"}") == 1)
        #expect(WorkersTests.children(of: gh.child.pid) == first)
        #expect(try HTTP.get(port: gh.port, "/").status == 200)

        // A second address: the first keeps its socket (and port 0 its port).
        let extra = try Self.freePort()
        let two = base.replacingOccurrences(of: "listen 127.0.0.1:0;", with: "listen 127.0.0.1:0;\n    listen 127.0.0.1:\(extra);")
        try two.write(toFile: gh.configPath, atomically: true, encoding: .utf8)
        let sent = try sh("\(binDir)/gatehouse -c \(gh.configPath) -s reload 2>&1")
        #expect(sent.status == 0, "\(sent.output)")
        #expect(try eventually(5) { try gh.metric("gatehouse_config_generation") == 2 })
        #expect(try HTTP.get(port: extra, "/").status == 200)
        #expect(try HTTP.get(port: gh.port, "/").status == 200)
        #expect(try eventually(3) { Set(WorkersTests.children(of: gh.child.pid)).isDisjoint(with: first) && WorkersTests.children(of: gh.child.pid).count == 2 })

        // The first address removed: refused from then on.
        try two.replacingOccurrences(of: "listen 127.0.0.1:0;\n", with: "").write(toFile: gh.configPath, atomically: true, encoding: .utf8)
        gh.child.signal(SIGHUP)
        #expect(try eventually(5) { try gh.metric("gatehouse_config_generation") == 3 })
        #expect(try eventually(3) { (try? Conn(port: gh.port, timeout: 1)) == nil })
        #expect(try HTTP.get(port: extra, "/").status == 200)
        #expect(log.text.contains("SIGHUP: \(gh.configPath) is valid; starting generation 3"))

        // `gatehouse reload`, as `-s reload`: a valid config, the same file, a new generation.
        let again = try sh("\(binDir)/gatehouse reload -c \(gh.configPath) 2>&1")
        #expect(again.status == 0, "\(again.output)")
        #expect(try eventually(5) { try gh.metric("gatehouse_config_generation") == 4 })
        let stop = try sh("\(binDir)/gatehouse -c \(gh.configPath) -s stop 2>&1")
        #expect(stop.status == 0, "\(stop.output)")
        #expect(gh.child.waitExit(timeout: 10) == 0)
        #expect(!FileManager.default.fileExists(atPath: pidPath))
    }

    @Test("scrapes of /metrics and /health through 5 reloads are all answered (none reset by the old generation as it hands the listener over), /health 200 throughout")
    func scrapesAcrossReloads() throws {
        let be = try DemoBackend()
        let log = LogFile()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port], top: Self.top(log)))
        let tally = Tally()
        let port = gh.metricsPort
        let scraper = Thread {
            var i = 0
            while tally.running {
                let path = i % 2 == 0 ? "/metrics" : "/health"
                i += 1
                do {
                    let r = try HTTP.request(port: port, "GET \(path) HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n")
                    tally.record(r.status == 200 ? nil : "\(path): \(r.status)")
                } catch {
                    tally.record("\(path): \(error)")
                }
            }
        }
        scraper.start()
        for i in 0..<5 {
            usleep(300_000)
            gh.child.signal(SIGHUP)
            #expect(try eventually(5) { try gh.metric("gatehouse_config_generation") == Double(i + 2) })
        }
        usleep(500_000)
        let (answered, failures) = tally.stop()
        #expect(failures.isEmpty, "\(failures.prefix(5))")
        #expect(answered > 50)
    }

    /// What a scraping thread saw.
    final class Tally: @unchecked Sendable {
        private let lock = NSLock()
        private var answered = 0
        private var failures: [String] = []
        private var on = true
        var running: Bool { lock.withLock { on } }
        func record(_ failure: String?) {
            lock.withLock { if let failure { failures.append(failure) } else { answered += 1 } }
        }
        func stop() -> (Int, [String]) {
            lock.withLock { on = false }
            usleep(200_000)
            return lock.withLock { (answered, failures) }
        }
    }

    @Test("-s without a pid file, or with an unknown signal, says why")
    func signalErrors() throws {
        let path = NSTemporaryDirectory() + "gatehouse-\(UUID().uuidString).conf"
        try GatehouseProcess.config(backends: [1]).write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let none = try sh("\(binDir)/gatehouse -c \(path) -s reload 2>&1")
        #expect(none.status != 0 && none.output.contains("has no pid_file"), "\(none.output)")
        let bad = try sh("\(binDir)/gatehouse -c \(path) -s restart 2>&1")
        #expect(bad.status != 0 && bad.output.contains("expected one of quit, reload, reopen, stop"), "\(bad.output)")
    }

    @Test("restart-only settings: a reload that changes access_log is refused and says why; one whose error_log cannot open is refused")
    func restartOnly() throws {
        let be = try DemoBackend()
        let log = LogFile()
        let access = NSTemporaryDirectory() + "gatehouse-\(UUID().uuidString).access"
        defer { try? FileManager.default.removeItem(atPath: access) }
        let base = GatehouseProcess.config(backends: [be.port], top: Self.top(log, "access_log \(access);"))
        let gh = try GatehouseProcess(config: base)
        try base.replacingOccurrences(of: "access_log \(access);", with: "access_log \(access) json;").write(toFile: gh.configPath, atomically: true, encoding: .utf8)
        gh.child.signal(SIGHUP)
        #expect(try eventually(3) { log.text.contains("reload refused: access_log changes at a restart only") }, "\(log.text)")
        try base.replacingOccurrences(of: "error_log \(log.path);", with: "error_log /nonexistent-dir/e.log;").write(toFile: gh.configPath, atomically: true, encoding: .utf8)
        let sent = try sh("\(binDir)/gatehouse -c \(gh.configPath) -s reload 2>&1")
        #expect(sent.status != 0 && sent.output.contains("error_log /nonexistent-dir/e.log"), "\(sent.output)")
        gh.child.signal(SIGHUP)
        #expect(try eventually(3) { try gh.metric("gatehouse_reloads_total{result=\"failed\"}") == 2 })
        #expect(try gh.metric("gatehouse_config_generation") == 1)
        #expect(try HTTP.get(port: gh.port, "/").status == 200)
    }

    @Test("gatehouse quit stops a single process at once (SIGQUIT)")
    func quitOneProcess() throws {
        let be = try DemoBackend()
        let pidPath = NSTemporaryDirectory() + "gatehouse-\(UUID().uuidString).pid"
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port], top: "workers 1;\npid_file \(pidPath);"))
        #expect(WorkersTests.children(of: gh.child.pid).isEmpty)
        let held = try Conn(port: gh.port)
        try held.send("GET /x?delay_ms=5000 HTTP/1.1\r\nHost: t\r\n\r\n")
        let quit = try sh("\(binDir)/gatehouse quit -c \(gh.configPath) 2>&1")
        #expect(quit.status == 0, "\(quit.output)")
        let start = Date()
        #expect(gh.child.waitExit(timeout: 5) == 0)
        #expect(Date().timeIntervalSince(start) < 2, "quit waited for the request in flight")
    }

    /// A port nothing listens on now.
    static func freePort() throws -> UInt16 {
        let (fd, port) = try loopbackSocket(listening: false)
        close(fd)
        return port
    }
}
