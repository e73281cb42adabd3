import Foundation
import Glibc
import Testing

/// Many clients, slow backends, big bodies: proven with the real binaries. Serialized so the
/// loads do not share two cores with each other.
@Suite("Load", .serialized)
struct LoadTests {
    static func threads(_ pid: Int32) -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task").count) ?? -1
    }

    static func status(_ pid: Int32, _ key: String) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return -1 }
        for line in text.split(separator: "\n") where line.hasPrefix(key + ":") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? -1
        }
        return -1
    }

    @Test("2,000 concurrent clients on a 200 ms backend all get 200; upstream connections stay within the cap; one thread")
    func concurrentSlow() throws {
        let be = try DemoBackend(["--delay-ms", "200"])
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port], backendExtra: "max_connections 100; queue_timeout 60s;"))
        let clients = try ManyClients(port: gh.port, count: 2000)
        let statuses = clients.roundTrip("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n", timeout: 90)
        let ok = statuses.filter { $0 == 200 }.count
        #expect(ok == 2000, "only \(ok) of 2000 got 200: \(Dictionary(grouping: statuses, by: { $0 }).mapValues(\.count))")
        let s = try be.stats()
        // The pool keeps its 100 connections idle after the load (the demand it saw), so the
        // stats request's own connection is the 101st the backend has open at once.
        #expect(s["peak_open"]! <= 100 + 1, "backend saw \(s["peak_open"]!) connections at once")
        #expect(try gh.metric("gatehouse_upstream_connects_total") <= 100, "more than the cap were opened")
        #expect(Self.threads(gh.child.pid) == 1, "threads: \(Self.threads(gh.child.pid))")
        #expect(try gh.metric("gatehouse_threads") == 1)
        #expect(try gh.metric("gatehouse_upstream_queue_wait_seconds_count{backend=\"b\"}") > 0)
    }

    @Test("5,000 idle keep-alive clients are held as small records, no task each, while others are served")
    func idleKeepAlive() throws {
        let be = try DemoBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port]))
        let clients = try ManyClients(port: gh.port, count: 5000)
        let first = clients.roundTrip("GET /a HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(first.filter { $0 == 200 }.count == 5000)
        usleep(800_000)  // past park_after: the connections give back their tasks
        #expect(try gh.metric("gatehouse_client_connections{state=\"idle\"}") == 5000)
        let tasks = try gh.metric("gatehouse_tasks_live")
        #expect(tasks < 20, "live tasks with 5000 idle clients: \(tasks)")
        #expect(try gh.metric("gatehouse_buffer_bytes{direction=\"client\"}") == 0)
        for _ in 0..<20 {
            #expect(try HTTP.get(port: gh.port, "/other").status == 200)
        }
        let second = clients.roundTrip("GET /b HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(second.filter { $0 == 200 }.count == 5000)
        #expect(Self.threads(gh.child.pid) == 1)
    }

    @Test("200 MB up and 200 MB down stream through with RSS bounded")
    func bigBodies() throws {
        let be = try DemoBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port]))
        #expect(try HTTP.get(port: gh.port, "/warm").status == 200)
        let before = Self.status(gh.child.pid, "VmRSS")
        let total = 200 * 1024 * 1024
        let c = try Conn(port: gh.port)
        try c.send("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: \(total)\r\n\r\n")
        let chunk = [UInt8](repeating: 0x61, count: 1 << 20)
        for _ in 0..<(total >> 20) { try c.send(chunk) }
        let up = try c.readResponse()
        #expect(up.text == "received \(total)\n")
        try c.send("GET /?size=\(total) HTTP/1.1\r\nHost: t\r\n\r\n")
        // Count the download without keeping it.
        var got = 0
        var headSeen = false
        while got < total {
            guard try c.fill() else { break }
            if !headSeen, let he = c.pending.firstRange(of: [13, 10, 13, 10]) {
                headSeen = true
                c.pending.removeFirst(he.upperBound)
            }
            if headSeen {
                got += c.pending.count
                c.pending.removeAll(keepingCapacity: true)
            }
        }
        #expect(got == total)
        // The relay yielded to other tasks every 256 KiB of the download (Task.yield): on the loop.
        #expect(Self.threads(gh.child.pid) == 1, "threads after a 200 MB relay: \(Self.threads(gh.child.pid))")
        let peak = Self.status(gh.child.pid, "VmHWM")
        print("RSS before \(before) KiB, peak \(peak) KiB for 2 x 200 MB bodies")
        #expect(peak - before < 16 * 1024 || underSanitizer, "RSS grew by \(peak - before) KiB")
        #expect(peak < 64 * 1024 || underSanitizer)
    }

    @Test("SIGTERM drains: in-flight requests finish, /health says 503, exit 0")
    func drain() throws {
        let be = try DemoBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port]))
        let idle = try Conn(port: gh.port)
        try idle.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try idle.readResponse().status == 200)
        let c = try Conn(port: gh.port)
        try c.send("GET /?delay_ms=1500 HTTP/1.1\r\nHost: t\r\n\r\n")
        usleep(300_000)
        gh.child.signal(SIGTERM)
        usleep(300_000)
        #expect(try HTTP.get(port: gh.metricsPort, "/health").status == 503)
        let r = try c.readResponse()
        #expect(r.status == 200 && r.header("Connection") == "close")
        #expect(idle.isClosedByPeer())
        #expect(gh.child.waitExit(timeout: 10) == 0)
    }

    @Test("out of file descriptors: accepting pauses and resumes, nothing crashes")
    func emfile() throws {
        let be = try DemoBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port]), shell: "ulimit -n 48;")
        var conns: [Conn] = []
        for _ in 0..<80 { conns.append(try Conn(port: gh.port)) }
        usleep(500_000)
        #expect(try gh.metric("gatehouse_accept_pauses_total") >= 1)
        conns.removeAll()
        usleep(500_000)
        var ok = false
        for _ in 0..<20 {
            if (try? HTTP.get(port: gh.port, "/"))?.status == 200 { ok = true; break }
            usleep(200_000)
        }
        #expect(ok)
    }

    @Test("promtool accepts /metrics", .enabled(if: Tool.promtool, Comment(rawValue: Tool.promtoolMissing)))
    func promtool() throws {
        let be = try DemoBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port]))
        _ = try HTTP.get(port: gh.port, "/")
        let r = try sh("curl -s http://127.0.0.1:\(gh.metricsPort)/metrics | promtool check metrics")
        #expect(r.status == 0, "\(r.output)")
        let m = try gh.metrics()
        for name in ["gatehouse_client_connections{state=\"reading\"}", "gatehouse_accepted_connections_total", "gatehouse_requests_in_flight",
                     "gatehouse_requests_total{backend=\"b\",status_class=\"2xx\"}", "gatehouse_request_duration_seconds_bucket",
                     "gatehouse_upstream_connections{backend=\"b\"", "gatehouse_upstream_queue_length", "gatehouse_upstream_connect_errors_total",
                     "gatehouse_timeouts_total", "gatehouse_retries_total", "gatehouse_loop_iterations_total", "gatehouse_loop_busy_seconds_total",
                     "gatehouse_tasks_live", "process_resident_memory_bytes", "gatehouse_heap_in_use_bytes", "gatehouse_buffer_bytes{direction=\"client\"}",
                     "gatehouse_buffer_pool_bytes", "process_open_fds", "process_max_fds", "gatehouse_threads"] {
            #expect(m.contains(name), "missing \(name)")
        }
    }
}
