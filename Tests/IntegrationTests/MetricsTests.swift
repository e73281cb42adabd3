import Foundation
import Glibc
import Testing

/// Metrics an operator can trust (issue 8): quantiles close to what clients see, descriptor counts
/// that match the kernel's without walking /proc at each scrape, pauses counted as pauses, and the
/// facts every exporter gives (start time, build).
@Suite("Metrics")
struct MetricsTests {
    /// `histogram_quantile` as Prometheus computes it: linear interpolation inside the bucket the
    /// rank falls in (from 0 for the first bucket).
    static func quantile(_ q: Double, family: String, labels: String, in text: String) throws -> Double {
        var buckets: [(le: Double, count: Double)] = []
        let prefix = labels.isEmpty ? "\(family)_bucket{le=\"" : "\(family)_bucket{\(labels),le=\""
        for line in text.split(separator: "\n") where line.hasPrefix(prefix) {
            let le = line.split(separator: "le=\"")[1].split(separator: "\"")[0]
            buckets.append((le == "+Inf" ? .infinity : Double(le)!, Double(line.split(separator: " ").last!)!))
        }
        guard let total = buckets.last?.count, total > 0 else { throw TestFailure("no observations in \(family){\(labels)}") }
        let rank = q * total
        var lower = 0.0, below = 0.0
        for b in buckets {
            if b.count >= rank {
                if b.le == .infinity { return lower }
                return lower + (b.le - lower) * (rank - below) / max(b.count - below, 1)
            }
            (lower, below) = (b.le, b.count)
        }
        return lower
    }

    /// Nearest-rank quantile of what a client measured.
    static func measured(_ q: Double, _ samples: [Double]) -> Double {
        let s = samples.sorted()
        return s[min(s.count - 1, Int((q * Double(s.count)).rounded(.up)) - 1)]
    }

    @Test("on a 50 ms backend the latency histograms put p50 and p99 within 10% of what the clients measured")
    func quantilesMatchClients() throws {
        let be = try DemoBackend(["--delay-ms", "50"])
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port]))
        let port = gh.port
        let log = Latencies()
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            guard let c = try? Conn(port: port) else { return log.failed() }
            for _ in 0..<30 {
                let t = monotonicSeconds()
                guard (try? c.send("GET /q HTTP/1.1\r\nHost: t\r\n\r\n")) != nil, let r = try? c.readResponse(), r.status == 200 else {
                    return log.failed()
                }
                log.add(monotonicSeconds() - t)
            }
        }
        let samples = log.samples
        #expect(log.failures == 0)
        #expect(samples.count == 240)
        let text = try gh.metrics()
        let server = "backend=\"b\",server=\"127.0.0.1:\(be.port)\""
        for q in [0.5, 0.99] {
            let client = Self.measured(q, samples)
            let duration = try Self.quantile(q, family: "gatehouse_request_duration_seconds", labels: "backend=\"b\"", in: text)
            let upstream = try Self.quantile(q, family: "gatehouse_upstream_response_seconds", labels: server, in: text)
            #expect(abs(duration - client) <= 0.1 * client, "p\(Int(q * 100)): histogram \(duration) s, clients \(client) s")
            #expect(abs(upstream - client) <= 0.1 * client, "p\(Int(q * 100)): upstream histogram \(upstream) s, clients \(client) s")
        }
        #expect(text.contains("gatehouse_upstream_requests_total{\(server)} 240"))
        // A loop that serves eight clients is never late by more than a few milliseconds.
        let lag = try Self.quantile(0.99, family: "gatehouse_loop_lag_seconds", labels: "", in: text)
        #expect(lag < 0.02, "loop lag p99 \(lag) s")
    }

    @Test("process_open_fds follows sockets as they open and close, and agrees with /proc/PID/fd")
    func openFDsMatchKernel() throws {
        let be = try DemoBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port]))
        _ = try HTTP.get(port: gh.port, "/warm")
        // The scrape's own connection is one of the process's descriptors while it renders.
        func agrees() throws -> Bool {
            let outside = try gh.openFDs()
            let reported = try gh.metric("process_open_fds")
            if reported - outside >= 0 && reported - outside <= 2 { return true }
            print("process_open_fds \(reported), /proc/PID/fd \(outside)")
            return false
        }
        #expect(try eventually(3) { try agrees() })
        let before = try gh.metric("process_open_fds")
        var clients = try keepAliveClients(port: gh.port, count: 200, path: "/k")
        #expect(try gh.metric("process_open_fds") >= before + 200)
        #expect(try eventually(3) { try agrees() })
        clients.removeAll()
        #expect(try eventually(3) { try gh.metric("process_open_fds") <= before })
        #expect(try eventually(3) { try agrees() })
    }

    @Test("accept pauses are counted once per pause, not once per 10 ms spent paused")
    func acceptPausesCountPauses() throws {
        let be = try DemoBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port], top: "limits { max_connections 2; }"))
        let a = try Conn(port: gh.port), b = try Conn(port: gh.port)
        for c in [a, b] {
            try c.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try c.readResponse().status == 200)
        }
        usleep(300_000)  // 30 looks at the limit
        #expect(try gh.metric("gatehouse_accept_pauses_total") == 1)
        // A third client waits in the accept queue until one leaves: the pause ends, then a new one begins.
        let c = try Conn(port: gh.port)
        try c.send("GET / HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        try a.send("GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        #expect(try a.readResponse().status == 200)
        #expect(try c.readResponse().status == 200)
        usleep(300_000)
        #expect(try gh.metric("gatehouse_accept_pauses_total") == 2)
        _ = b
    }

    @Test("process_start_time_seconds and gatehouse_build_info are there, promtool-clean, with fine latency buckets")
    func startTimeAndBuildInfo() throws {
        let be = try DemoBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port]))
        _ = try HTTP.get(port: gh.port, "/")
        let start = try gh.metric("process_start_time_seconds")
        #expect(abs(start - Date().timeIntervalSince1970) < 60)
        let text = try gh.metrics()
        let info = text.split(separator: "\n").first { $0.hasPrefix("gatehouse_build_info{") }.map(String.init) ?? ""
        #expect(info.contains("version=\"0.1.0\"") && info.contains("openssl=\"OpenSSL 3") && (info.hasSuffix(" 1") || info.hasSuffix(" 1.0")), "\(info)")
        let bounds = text.split(separator: "\n").filter { $0.hasPrefix("gatehouse_request_duration_seconds_bucket{backend=\"b\"") }
        #expect(bounds.count == 129, "128 bounds and +Inf")
        #expect(bounds.first?.contains("le=\"0.001\"") == true && bounds.dropLast().last?.contains("le=\"60.0968\"") == true, "\(bounds.first ?? "") … \(bounds.dropLast().last ?? "")")
        let r = try sh("curl -s http://127.0.0.1:\(gh.metricsPort)/metrics | promtool check metrics")
        #expect(r.status == 0, "\(r.output)")
    }

    @Test("gatehouse_bytes_total counts every byte each way on both sides: what curl sent and received on the client side, at least as much on the backend side")
    func bytes() throws {
        let be = try DemoBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port]))
        let body = String(repeating: "x", count: 5000)
        // One connection, two requests: size_request is what curl wrote (head and body), size_header and size_download what it read.
        let out = try sh("curl -s -o /dev/null -o /dev/null -w '%{size_request} %{size_upload} %{size_header} %{size_download}\\n' --data-binary \(body) http://127.0.0.1:\(gh.port)/a http://127.0.0.1:\(gh.port)/b")
        let sizes = out.output.split(separator: "\n").map { $0.split(separator: " ").compactMap { Double($0) } }
        #expect(sizes.count == 2 && sizes.allSatisfy { $0.count == 4 }, "\(out.output)")
        #expect(sizes.allSatisfy { $0[0] > $0[1] && $0[1] == 5000 }, "\(out.output)")
        let sent = sizes.reduce(0) { $0 + $1[0] }
        let received = sizes.reduce(0) { $0 + $1[2] + $1[3] }
        func bytes(_ side: String, _ dir: String) throws -> Double { try gh.metric("gatehouse_bytes_total{side=\"\(side)\",direction=\"\(dir)\"}") }
        #expect(try bytes("client", "in") == sent)
        #expect(try bytes("client", "out") == received)
        // The backend gets every body byte and a rewritten head; what it answers reaches the client.
        #expect(try bytes("backend", "out") >= 10_000)
        #expect(try bytes("backend", "in") >= sizes.reduce(0) { $0 + $1[3] })
    }
}

/// Latencies several client threads record.
private final class Latencies: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Double] = []
    private var failureCount = 0

    func add(_ v: Double) { lock.withLock { values.append(v) } }
    func failed() { lock.withLock { failureCount += 1 } }
    var samples: [Double] { lock.withLock { values } }
    var failures: Int { lock.withLock { failureCount } }
}

private func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
