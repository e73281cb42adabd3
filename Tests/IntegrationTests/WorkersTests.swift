import Foundation
import Glibc
import Testing

/// `workers N` (issue 8): a supervisor that binds the listeners and runs N one-thread workers on
/// them, replaces a worker that dies, and drains them all on SIGTERM.
@Suite("Workers", .serialized)
struct WorkersTests {
    /// The pids whose parent is `parent` (from /proc/PID/stat).
    static func children(of parent: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.filter { pid in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 1 && Int32(fields[1]) == parent
        }.sorted()
    }

    /// The slot a worker was started for (its `--worker-slot`).
    static func slot(_ pid: Int32) -> Int? {
        guard let raw = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return nil }
        let args = raw.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        guard let i = args.firstIndex(of: "--worker-slot"), i + 1 < args.count else { return nil }
        return Int(args[i + 1])
    }

    static func threads(_ pid: Int32) -> Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []).count
    }

    /// The client ports of the connections `pid` has accepted on `port` (its socket inodes matched
    /// against /proc/net/tcp).
    static func clientPorts(of pid: Int32, on port: UInt16) -> Set<UInt16> {
        let fdDir = "/proc/\(pid)/fd"
        var inodes = Set<String>()
        for fd in (try? FileManager.default.contentsOfDirectory(atPath: fdDir)) ?? [] {
            if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(fdDir)/\(fd)"), target.hasPrefix("socket:[") {
                inodes.insert(String(target.dropFirst(8).dropLast()))
            }
        }
        var ports = Set<UInt16>()
        // Read to the end: a /proc file says it is empty, and is longer than one page here.
        let table = FileHandle(forReadingAtPath: "/proc/net/tcp").map { String(decoding: $0.readDataToEndOfFile(), as: UTF8.self) } ?? ""
        for line in table.split(separator: "\n").dropFirst() {
            let f = line.split(separator: " ")
            guard f.count > 9, f[3] == "01", inodes.contains(String(f[9])),
                  let local = UInt16(f[1].split(separator: ":")[1], radix: 16), local == port,
                  let remote = UInt16(f[2].split(separator: ":")[1], radix: 16) else { continue }
            ports.insert(remote)
        }
        return ports
    }

    static func localPort(_ c: Conn) -> UInt16 {
        var a = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(c.fd, $0, &len) } }
        return UInt16(bigEndian: a.sin_port)
    }

    @Test("workers 2: one thread each, connections spread over both, a killed worker replaced within 1 s while the other's clients carry on, SIGTERM drains all")
    func twoWorkers() throws {
        let be = try DemoBackend()
        let log = LogFile()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port], top: "workers 2;\nerror_log \(log.path);"))
        let supervisor = gh.child.pid
        #expect(try eventually(3) { Self.children(of: supervisor).count == 2 })
        let workers = Self.children(of: supervisor).sorted { (Self.slot($0) ?? 9) < (Self.slot($1) ?? 9) }
        try #require(workers.count == 2)
        #expect(workers.map(Self.slot) == [0, 1])

        let conns = try keepAliveClients(port: gh.port, count: 100, path: "/c")
        // Counted once each has served: every thread its runtime would start has started by now.
        #expect(Self.threads(supervisor) == 1)
        for w in workers { #expect(Self.threads(w) == 1, "worker \(w) has \(Self.threads(w)) threads") }
        let a = Self.clientPorts(of: workers[0], on: gh.port), b = Self.clientPorts(of: workers[1], on: gh.port)
        #expect(a.count + b.count == 100, "\(a.count) + \(b.count)")
        #expect(a.count >= 25 && b.count >= 25, "SO_REUSEPORT spreads connections: \(a.count) / \(b.count)")

        kill(workers[0], SIGKILL)
        #expect(try eventually(1) { let now = Self.children(of: supervisor); return now.count == 2 && !now.contains(workers[0]) },
                "replaced within 1 s: \(Self.children(of: supervisor))")
        let logged = log.text
        #expect(logged.contains("[error] worker 0 (pid \(workers[0])) was killed by signal 9 (Killed); starting another"), "\(logged)")
        var survivors = 0, lost = 0
        for (i, c) in conns.enumerated() {
            let port = Self.localPort(c)
            let ok = (try? c.send("GET /again\(i) HTTP/1.1\r\nHost: t\r\n\r\n")) != nil && (try? c.readResponse())?.status == 200
            if b.contains(port) {
                #expect(ok, "a client of the surviving worker lost its connection")
                survivors += ok ? 1 : 0
            } else {
                lost += ok ? 0 : 1
            }
        }
        #expect(survivors == b.count && lost == a.count)
        for i in 0..<20 { #expect(try HTTP.get(port: gh.port, "/new\(i)").status == 200) }
        let replacement = Self.children(of: supervisor)
        for w in replacement { #expect(Self.threads(w) == 1) }

        // SIGTERM drains: a request in flight on a slow backend still gets its answer, and new
        // connections are refused at once.
        let slow = try Conn(port: gh.port)
        try slow.send("GET /?delay_ms=600 HTTP/1.1\r\nHost: t\r\n\r\n")
        usleep(100_000)
        gh.child.signal(SIGTERM)
        #expect(try slow.readResponse().status == 200)
        #expect(gh.child.waitExit(timeout: 10) == 0)
        for w in replacement { #expect(kill(w, 0) != 0, "worker \(w) outlived the supervisor") }
        #expect(throws: (any Error).self) { _ = try Conn(port: gh.port) }
    }

    @Test("/metrics with workers: counters summed over every worker, never down across a worker's death; gauges over the live ones; per-worker series; promtool-clean")
    func summedMetrics() throws {
        let be = try DemoBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port], top: "workers 2;"))
        #expect(try eventually(3) { Self.children(of: gh.child.pid).count == 2 })
        let ok = "gatehouse_requests_total{backend=\"b\",status_class=\"2xx\"}"
        for i in 0..<60 { #expect(try HTTP.get(port: gh.port, "/m\(i)").status == 200) }
        // Each worker publishes every second; the one serving /metrics at the scrape.
        #expect(try eventually(3) { try gh.metric(ok) == 60 })
        #expect(try eventually(3) { try gh.metric("gatehouse_request_duration_seconds_count{backend=\"b\"}") == 60 }, "histograms sum too")
        #expect(try gh.metric("gatehouse_workers") == 2)
        let text = try gh.metrics()
        #expect(text.contains("gatehouse_worker_client_connections{worker=\"0\"}") && text.contains("gatehouse_worker_client_connections{worker=\"1\"}"))
        #expect(text.contains("gatehouse_worker_resident_memory_bytes{worker=\"1\"}"))
        let r = try sh("curl -s http://127.0.0.1:\(gh.metricsPort)/metrics | promtool check metrics")
        #expect(r.status == 0, "\(r.output)")
        // Both workers served some: their per-worker busy time is not zero.
        for w in ["0", "1"] { #expect(try gh.metric("gatehouse_worker_loop_busy_seconds_total{worker=\"\(w)\"}") > 0) }

        // Open connections are a gauge: the sum of the live workers'.
        var held = try keepAliveClients(port: gh.port, count: 10, path: "/h")
        #expect(try eventually(3) { try gh.metric("gatehouse_client_connections_open") == 10 })
        #expect(try eventually(3) { try gh.metric(ok) == 70 })

        // A worker dies: what it counted stays counted, and its replacement adds to it.
        let victim = Self.children(of: gh.child.pid).first { Self.slot($0) == 1 }!
        kill(victim, SIGKILL)
        #expect(try eventually(2) { let now = Self.children(of: gh.child.pid); return now.count == 2 && !now.contains(victim) })
        #expect(try gh.metric(ok) >= 70)
        #expect(try eventually(2) { try gh.metric("gatehouse_worker_restarts_total") == 1 })
        #expect(try gh.metric("gatehouse_workers_configured") == 2)
        #expect(abs(try gh.metric("gatehouse_config_load_timestamp_seconds") - Date().timeIntervalSince1970) < 120)
        for i in 0..<20 { #expect(try HTTP.get(port: gh.port, "/n\(i)").status == 200) }
        #expect(try eventually(3) { try gh.metric(ok) == 90 })
        // Gauges count the live workers only: the held connections left are those on worker 0.
        let worker0 = Self.children(of: gh.child.pid).first { Self.slot($0) == 0 }!
        let onWorker0 = Self.clientPorts(of: worker0, on: gh.port).intersection(held.map(Self.localPort)).count
        #expect(try eventually(3) { try gh.metric("gatehouse_client_connections_open") == Double(onWorker0) })
        held.removeAll()
    }

    @Test("a second instance cannot join the port; a worker restarted after the file changed runs the config the others run (the file is read at a reload only)")
    func guards() throws {
        let be = try DemoBackend()
        let log = LogFile()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port], top: "workers 2;\nerror_log \(log.path);"))
        let second = try sh("\(binDir)/gatehouse --listen 127.0.0.1:\(gh.port) --backend 127.0.0.1:\(be.port) --metrics off --workers 2 2>&1; echo status=$?")
        #expect(second.output.contains("address already in use") && second.output.contains("status=1"), "\(second.output)")

        let text = try String(contentsOfFile: gh.configPath, encoding: .utf8)
        try text.replacingOccurrences(of: "listen 127.0.0.1:0;", with: "listen 127.0.0.1:1;").write(toFile: gh.configPath, atomically: true, encoding: .utf8)
        #expect(try eventually(3) { Self.children(of: gh.child.pid).count == 2 })
        let victim = Self.children(of: gh.child.pid)[0]
        kill(victim, SIGKILL)
        #expect(try eventually(3) { let now = Self.children(of: gh.child.pid); return now.count == 2 && !now.contains(victim) })
        // Both workers serve the sockets bound at start: every connection is answered.
        for i in 0..<20 {
            let c = try Conn(port: gh.port, timeout: 3)
            try c.send("GET /still\(i) HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            #expect(try c.readResponse().status == 200)
        }
        #expect(!log.text.contains("not where the supervisor bound it"), "\(log.text)")
    }

    @Test("SIGQUIT stops at once: workers killed, a request in flight cut off, the supervisor gone within a second")
    func quit() throws {
        let be = try DemoBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port], top: "workers 2;"))
        #expect(try eventually(3) { Self.children(of: gh.child.pid).count == 2 })
        let workers = Self.children(of: gh.child.pid)
        let slow = try Conn(port: gh.port, timeout: 5)
        try slow.send("GET /?delay_ms=3000 HTTP/1.1\r\nHost: t\r\n\r\n")
        usleep(100_000)
        let start = Date()
        gh.child.signal(SIGQUIT)
        #expect(gh.child.waitExit(timeout: 3) == 0)
        #expect(Date().timeIntervalSince(start) < 1)
        #expect(throws: (any Error).self) { _ = try slow.readResponse() }
        for w in workers { #expect(kill(w, 0) != 0, "worker \(w) outlived SIGQUIT") }
    }

    @Test("--workers auto starts one worker per usable CPU; workers 1 runs in one process, as before")
    func autoAndOne() throws {
        let be = try DemoBackend()
        let cpus = Int(try sh("nproc").output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 1  // the affinity mask, as auto
        let one = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port], top: "workers 1;"))
        #expect(try HTTP.get(port: one.port, "/").status == 200)
        #expect(Self.children(of: one.child.pid).isEmpty)
        let auto = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port], top: "workers auto;"))
        if cpus > 1 {
            #expect(try eventually(3) { Self.children(of: auto.child.pid).count == cpus })
        } else {
            #expect(Self.children(of: auto.child.pid).isEmpty)
        }
        #expect(try HTTP.get(port: auto.port, "/").status == 200)
    }
}
