import Foundation
import Glibc
import Testing

/// The live status page (issue 8 item 6). /status.json is /metrics regrouped, so each figure in it
/// must equal the one a scrape reads; /status, loaded in a real headless Chromium, must show after
/// live polls (charts with points, `data-ready`) what /metrics holds, and take rates and
/// percentiles from the differences between polls.
@Suite("Status page", .serialized)
struct StatusPageTests {
    static let classes = ["other", "1xx", "2xx", "3xx", "4xx", "5xx"]
    static let states = ["reading", "waiting_upstream", "writing", "idle", "tunnel", "http2"]

    /// Each sample line of exposition text, by its name and labels as written.
    static func samples(_ text: String) -> [String: Double] {
        var out: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " ") else { continue }
            out[String(line[..<space])] = Double(line[line.index(after: space)...])
        }
        return out
    }

    /// Two backends behind the proxy, 13 requests answered (10 2xx, 2 4xx, 1 3xx) and three
    /// keep-alive clients left open (among the 13), so every figure compared is worth comparing.
    static func served(top: String = "") throws -> (gh: GatehouseProcess, backends: [DemoBackend], held: [Conn]) {
        let backends = [try DemoBackend(), try DemoBackend()]
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: backends.map(\.port), top: top))
        for (i, path) in ["/a", "/b", "/c", "/d", "/e", "/f", "/g", "/x?status=404", "/y?status=404", "/z?status=301"].enumerated() {
            let status = try HTTP.get(port: gh.port, path).status
            guard status == [200, 200, 200, 200, 200, 200, 200, 404, 404, 301][i] else { throw TestFailure("GET \(path): \(status)") }
        }
        return (gh, backends, try keepAliveClients(port: gh.port, count: 3, path: "/held"))
    }

    static func server(_ b: DemoBackend) -> String { "backend=\"b\",server=\"127.0.0.1:\(b.port)\"" }

    @Test("/status.json: valid JSON whose figures equal /metrics (connections, requests by class, latency buckets, servers, workers)")
    func snapshotEqualsMetrics() throws {
        let (gh, backends, held) = try Self.served()
        let before = Self.samples(try gh.metrics())
        let r = try HTTP.get(port: gh.metricsPort, "/status.json")
        let after = Self.samples(try gh.metrics())
        #expect(r.status == 200 && r.header("Content-Type") == "application/json")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any], "\(r.text)")
        let m = before
        func same(_ key: String) -> Double {
            #expect(before[key] != nil && before[key] == after[key], "\(key) moved between scrapes")
            return m[key] ?? .nan
        }

        #expect(abs((doc["time"] as? Double ?? 0) - Date().timeIntervalSince1970) < 10)
        let conns = try #require(doc["connections"] as? [String: Any])
        #expect(conns["open"] as? Double == same("gatehouse_client_connections_open") && m["gatehouse_client_connections_open"] == Double(held.count))
        #expect(conns["accepted"] as? Double == same("gatehouse_accepted_connections_total"))
        let states = try #require(conns["states"] as? [String: Double])
        #expect(states.count == Self.states.count)
        for s in Self.states { #expect(states[s] == same("gatehouse_client_connections{state=\"\(s)\"}"), "\(s)") }

        let requests = try #require(doc["requests"] as? [String: Any])
        let byClass = try #require(requests["classes"] as? [String: Double])
        #expect(byClass.count == Self.classes.count)
        for c in Self.classes { #expect(byClass[c] == same("gatehouse_requests_total{backend=\"b\",status_class=\"\(c)\"}"), "\(c)") }
        #expect(byClass["2xx"] == 10 && byClass["4xx"] == 2 && byClass["3xx"] == 1 && requests["total"] as? Double == 13)

        let latency = try #require(doc["latency"] as? [String: Any])
        let le = try #require(latency["le"] as? [Double]), buckets = try #require(latency["buckets"] as? [Double])
        let lines = (try gh.metrics()).split(separator: "\n").filter { $0.hasPrefix("gatehouse_request_duration_seconds_bucket{backend=\"b\"") }
        #expect(le.count == 128 && buckets.count == 128 && lines.count == 129)
        for (i, line) in lines.dropLast().enumerated() where i < le.count {
            #expect(line == "gatehouse_request_duration_seconds_bucket{backend=\"b\",le=\"\(le[i])\"} \(Int(buckets[i]))")
        }
        #expect(latency["count"] as? Double == same("gatehouse_request_duration_seconds_count{backend=\"b\"}") && latency["count"] as? Double == 13)

        let backendList = try #require(doc["backends"] as? [[String: Any]])
        #expect(backendList.count == 1 && backendList.first?["name"] as? String == "b")
        #expect(backendList.first?["queue"] as? Double == same("gatehouse_upstream_queue_length{backend=\"b\"}"))
        let servers = backendList.first?["servers"] as? [[String: Any]] ?? []
        #expect(servers.map { $0["server"] as? String } == backends.map { "127.0.0.1:\($0.port)" })
        for (s, b) in zip(servers, backends) {
            let l = Self.server(b)
            #expect(s["up"] as? Double == same("gatehouse_upstream_server_up{\(l)}") && m["gatehouse_upstream_server_up{\(l)}"] == 1)
            #expect(s["requests"] as? Double == same("gatehouse_upstream_requests_total{\(l)}"))
            #expect(s["active"] as? Double == same("gatehouse_upstream_connections{\(l),state=\"active\"}"))
            #expect(s["idle"] as? Double == same("gatehouse_upstream_connections{\(l),state=\"idle\"}"))
        }
        #expect(servers.compactMap { $0["requests"] as? Double }.reduce(0, +) == 13)

        let workers = try #require(doc["workers"] as? [String: Any])
        let each = workers["each"] as? [[String: Any]] ?? []
        #expect(workers["count"] as? Double == 1 && each.count == 1 && each.first?["worker"] as? String == "0")
        #expect(each.first?["connections"] as? Double == Double(held.count))
        // The loop's busy time only grows: the document's lies between the scrapes around it.
        let busy = each.first?["busy_seconds"] as? Double ?? -1
        let busyBefore = before["gatehouse_loop_busy_seconds_total"] ?? .nan, busyAfter = after["gatehouse_loop_busy_seconds_total"] ?? .nan
        #expect(busy > 0 && busyBefore <= busy && busy <= busyAfter, "\(busyBefore) ≤ \(busy) ≤ \(busyAfter)")
        #expect((each.first?["rss_bytes"] as? Double ?? 0) > 1_000_000)
    }

    @Test("/status and /status.json answer HEAD without a body on a kept-alive connection; the page is self-contained; other paths 404")
    func headAndPaths() throws {
        let be = try DemoBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port]))
        let page = try HTTP.get(port: gh.metricsPort, "/status")
        #expect(page.status == 200 && page.header("Content-Type") == "text/html; charset=utf-8")
        // Nothing fetched from elsewhere: no script or style source, no link, no URL but its own.
        for outside in ["src=", "<link", "@import", "url(", "http:", "https:"] { #expect(!page.text.contains(outside), "\(outside)") }
        #expect(page.text.contains("<script>") && page.text.contains("fetch(\"status.json\""))

        let c = try Conn(port: gh.metricsPort)
        try c.send("HEAD /status.json HTTP/1.1\r\nHost: m\r\n\r\nHEAD /status HTTP/1.1\r\nHost: m\r\n\r\nGET /health HTTP/1.1\r\nHost: m\r\n\r\n")
        let json = try c.readResponse(method: "HEAD")
        #expect(json.status == 200 && json.header("Content-Type") == "application/json" && (Int(json.header("Content-Length") ?? "") ?? 0) > 500)
        let html = try c.readResponse(method: "HEAD")
        #expect(html.status == 200 && html.header("Content-Length") == String(page.body.count))
        // Had either HEAD carried a body, this would read it as the next response.
        let health = try c.readResponse()
        #expect(health.status == 200 && health.text == "ok\n")

        for path in ["/status/", "/status.jsonx", "/statusx", "/status.html"] {
            #expect(try HTTP.get(port: gh.metricsPort, path).status == 404, "\(path)")
        }
    }

    @Test("/status in headless Chromium: after live polls it shows the requests, connections, servers and worker /metrics counts",
          .enabled(if: Tool.chromium, Comment(rawValue: Tool.chromiumMissing)))
    func pageShowsMetrics() throws {
        let (gh, backends, held) = try Self.served()
        let page = try RenderedPage.load("http://127.0.0.1:\(gh.metricsPort)/status")
        let m = Self.samples(try gh.metrics())
        try Self.expectLive(page)

        #expect(page.value(id: "req-total") == 13 && page.value(id: "conn-open") == Double(held.count))
        #expect(page.value(id: "conn-open") == m["gatehouse_client_connections_open"])
        for s in Self.states {
            #expect(page.field("count", inRowWith: "data-state=\"\(s)\"") == m["gatehouse_client_connections{state=\"\(s)\"}"], "\(s)")
        }
        for c in Self.classes {
            #expect(page.field("total", inRowWith: "data-class=\"\(c)\"") == m["gatehouse_requests_total{backend=\"b\",status_class=\"\(c)\"}"], "\(c)")
            // Nothing was sent while the page polled.
            #expect(page.field("rate", inRowWith: "data-class=\"\(c)\"") == 0, "\(c)")
        }
        #expect(page.value(id: "rps-total") == 0)
        // Percentiles are of the requests in the window only, and there were none: a dash, not all-time figures.
        #expect(page.value(id: "latency-count") == 0 && page.value(id: "p50") == nil && page.value(id: "p99") == nil)

        #expect(page.all("data-server") == backends.map { "127.0.0.1:\($0.port)" })
        for b in backends {
            let row = "data-server=\"127.0.0.1:\(b.port)\"", l = Self.server(b)
            #expect(page.field("requests", inRowWith: row) == m["gatehouse_upstream_requests_total{\(l)}"])
            #expect(page.field("up", inRowWith: row) == 1 && m["gatehouse_upstream_server_up{\(l)}"] == 1)
            #expect(page.field("active", inRowWith: row) == m["gatehouse_upstream_connections{\(l),state=\"active\"}"])
            #expect(page.field("idle", inRowWith: row) == m["gatehouse_upstream_connections{\(l),state=\"idle\"}"])
            #expect(page.field("queue", inRowWith: row) == m["gatehouse_upstream_queue_length{backend=\"b\"}"])
        }
        #expect(page.value(id: "workers-count") == 1 && page.all("data-worker") == ["0"])
        #expect(page.field("connections", inRowWith: "data-worker=\"0\"") == Double(held.count))
        #expect((page.field("rss", inRowWith: "data-worker=\"0\"") ?? 0) > 1_000_000)
    }

    @Test("/status under traffic: requests/s, loop utilization and p50/p90/p99 come from the differences between polls",
          .enabled(if: Tool.chromium, Comment(rawValue: Tool.chromiumMissing)))
    func pageRatesUnderTraffic() throws {
        let be = try DemoBackend(["--delay-ms", "20"])
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port]))
        let traffic = Traffic(port: gh.port, clients: 4)
        usleep(300_000)
        var first = 0.0, last = 0.0
        var page: RenderedPage
        // On a machine busy with other tests, Chromium's last two polls can fall within one stall
        // of the traffic, and the last interval's rate reads 0: the page is loaded again (twice at most).
        var tries = 0
        repeat {
            first = try gh.metric("gatehouse_requests_total{backend=\"b\",status_class=\"2xx\"}")
            page = try RenderedPage.load("http://127.0.0.1:\(gh.metricsPort)/status")
            last = try gh.metric("gatehouse_requests_total{backend=\"b\",status_class=\"2xx\"}")
            tries += 1
        } while tries < 3 && (page.value(id: "rps-total") ?? 0) == 0
        let sent = traffic.stop()
        try Self.expectLive(page)
        #expect(sent > 0 && traffic.failures == 0)

        let total = page.value(id: "req-total") ?? -1
        #expect(first <= total && total <= last, "\(first) ≤ \(total) ≤ \(last)")
        #expect((page.value(id: "rps-total") ?? 0) > 0 && (page.field("rate", inRowWith: "data-class=\"2xx\"") ?? 0) > 0)
        #expect((page.field("rate", inRowWith: "data-server=\"127.0.0.1:\(be.port)\"") ?? 0) > 0)
        #expect((page.field("utilization", inRowWith: "data-worker=\"0\"") ?? 0) > 0)
        // Every request takes the backend's 20 ms (the bucket holding it starts at 19.03 ms).
        let p50 = page.value(id: "p50") ?? -1, p90 = page.value(id: "p90") ?? -1, p99 = page.value(id: "p99") ?? -1
        #expect((page.value(id: "latency-count") ?? 0) > 0)
        #expect(0.019 <= p50 && p50 <= 0.25 && p50 <= p90 && p90 <= p99 && p99 <= 1, "p50 \(p50) p90 \(p90) p99 \(p99)")
        #expect((Int(page.attribute("data-points", ofTagWith: "id=\"chart-latency\"") ?? "") ?? 0) >= 2)
    }

    @Test("workers 2: the page worker 0 serves shows both workers, and the requests and connections of both",
          .enabled(if: Tool.chromium, Comment(rawValue: Tool.chromiumMissing)))
    func pageShowsBothWorkers() throws {
        let (gh, _, held) = try Self.served(top: "workers 2;")
        // The other worker publishes its figures each second.
        #expect(try eventually(5) {
            let m = Self.samples(try gh.metrics())
            return m["gatehouse_workers"] == 2 && m["gatehouse_client_connections_open"] == Double(held.count)
                && Self.classes.compactMap { m["gatehouse_requests_total{backend=\"b\",status_class=\"\($0)\"}"] }.reduce(0, +) == 13
        })
        let page = try RenderedPage.load("http://127.0.0.1:\(gh.metricsPort)/status")
        let m = Self.samples(try gh.metrics())
        try Self.expectLive(page)
        #expect(page.value(id: "workers-count") == 2 && page.all("data-worker") == ["0", "1"])
        #expect(page.value(id: "req-total") == 13 && page.value(id: "conn-open") == Double(held.count))
        for w in ["0", "1"] {
            #expect(page.field("connections", inRowWith: "data-worker=\"\(w)\"") == m["gatehouse_worker_client_connections{worker=\"\(w)\"}"], "worker \(w)")
            #expect(page.field("utilization", inRowWith: "data-worker=\"\(w)\"") != nil, "worker \(w)")
        }
        #expect(page.all("data-series").filter { $0.hasPrefix("worker ") } == ["worker 0", "worker 1"])
    }

    /// The page's script ran without error and drew its charts from at least three polls.
    static func expectLive(_ page: RenderedPage) throws {
        #expect(page.attribute("data-ready", ofTagWith: "<body") == "true", "\(page.html.prefix(3000))")
        #expect(page.attribute("data-error", ofTagWith: "<body") == nil)
        #expect(page.console.filter { $0.contains("Uncaught") || $0.contains("Error") }.isEmpty, "\(page.console)")
        #expect((Int(page.attribute("data-polls", ofTagWith: "<body") ?? "") ?? 0) >= 3)
        for chart in ["chart-requests", "chart-connections", "chart-utilization"] {
            #expect((Int(page.attribute("data-points", ofTagWith: "id=\"\(chart)\"") ?? "") ?? 0) >= 2, "\(chart)")
        }
    }
}

/// Clients sending requests on keep-alive connections, one after another each, until stopped.
private final class Traffic: @unchecked Sendable {
    private let lock = NSLock()
    private var running = true
    private var sentCount = 0
    private var failureCount = 0
    private let done = DispatchGroup()

    init(port: UInt16, clients: Int) {
        for _ in 0..<clients {
            DispatchQueue.global().async(group: done) { self.drive(port) }
        }
    }

    private func drive(_ port: UInt16) {
        guard let c = try? Conn(port: port) else { return lock.withLock { failureCount += 1 } }
        while lock.withLock({ running }) {
            guard (try? c.send("GET /t HTTP/1.1\r\nHost: t\r\n\r\n")) != nil, (try? c.readResponse())?.status == 200 else {
                return lock.withLock { failureCount += 1 }
            }
            lock.withLock { sentCount += 1 }
        }
    }

    /// Stops the clients and returns how many requests were answered.
    func stop() -> Int {
        lock.withLock { running = false }
        done.wait()
        return lock.withLock { sentCount }
    }

    var failures: Int { lock.withLock { failureCount } }
}
