import Foundation
import Glibc
import Testing

extension LoadTests {
    /// A few hundred slow clients must not take the service down: slowhttptest's three attacks,
    /// each against Gatehouse with its default configuration (ports apart), while a normal request
    /// goes through once a second. Nested in the Load suite so it never shares the two cores with
    /// another load.
    @Suite("Slow clients (slowhttptest)", .serialized, .enabled(if: Tool.slowhttptest, Comment(rawValue: Tool.slowhttptestMissing)))
    struct SlowClientTests {
        /// Attack connections, opened at `rate` a second, for at most `duration` seconds.
        static let connections = 500
        static let rate = 200
        static let duration = 40
        /// Every probe must be answered 200 within this.
        static let probeDeadline = 1.0
        /// Every attacker must have been closed by this second of the attack: slowloris by
        /// `client_header` (10 s total), slow body and slow read by the minimum data rate
        /// (240 B/s after a 5 s grace); the connections are all open by the third second.
        static let attackersClosedBy = 20.0
        /// The proxy's resident memory through the attack (the default `buffer_memory` budget is
        /// 64 MiB; the rest is the process itself and its connection records).
        static let rssBudgetMiB = 150

        @Test("slowloris: 500 trickled request heads are closed by client_header; every probe answered within 1 s")
        func slowloris() throws {
            // A header line of up to 24 bytes every 5 s, never the blank line.
            try attack(SlowAttack(name: "slowloris", mode: "-H", path: "/", extra: ["-i", "5", "-x", "24"]))
        }

        @Test("slow body: 500 POST bodies trickled a few bytes every 5 s are closed by the minimum rate and hold no backend slot")
        func slowBody() throws {
            // Content-Length 8 KiB (within the request buffer), up to 10 bytes every 5 s.
            try attack(SlowAttack(name: "slowbody", mode: "-B", path: "/", extra: ["-s", "8192", "-i", "5", "-x", "10"]))
        }

        @Test("slow read: 500 clients reading a 1 MiB response 32 bytes every 5 s are closed by the minimum rate and hold no backend slot")
        func slowRead() throws {
            // Advertised windows of 512-1024 bytes, 32 bytes read every 5 s, one request each.
            // On loopback, Linux grows a socket's send buffer up to tcp_wmem's maximum (4 MiB
            // here) while the window is still small, so the whole 1 MiB can land in the kernel
            // at once: the proxy then sees a finished response and a keep-alive client, and the
            // attacker stays open until the proxy notices the bytes it has not taken.
            try attack(SlowAttack(name: "slowread", mode: "-X", path: "/?size=1048576",
                                  extra: ["-w", "512", "-y", "1024", "-n", "5", "-z", "32", "-k", "1"]))
        }

        /// Runs `attack` against a default Gatehouse in front of the demo backend, probing beside
        /// it, and judges availability, when the attackers were closed, and memory.
        func attack(_ attack: SlowAttack) throws {
            let bin = releaseBinDir ?? binDir
            let be = try DemoBackend(bin: bin)
            let gh = try GatehouseProcess(config: """
                log_level warning;
                metrics 127.0.0.1:0;
                backend b { server 127.0.0.1:\(be.port); }
                server { listen 127.0.0.1:0; proxy_pass b; }
                """, bin: bin)
            #expect(try HTTP.get(port: gh.port, "/warm").status == 200)
            let running = try attack.start(port: gh.port, connections: Self.connections, rate: Self.rate, seconds: Self.duration)
            let prober = Prober(port: gh.port, pid: gh.child.pid)
            let timeline = try running.finish()
            prober.stop()
            let probes = prober.probes
            let rssMiB = prober.peakRSSKiB / 1024

            let proxySide = prober.allClosedAt(after: Self.connections * 9 / 10)
            let failed = probes.filter { $0.status != 200 || $0.seconds > Self.probeDeadline }
            let failures = failed.map { p in
                "\(Int(p.at))s: " + (p.status.map { "\($0)" } ?? (p.error ?? "no answer")) + String(format: " after %.2f s", p.seconds)
            }
            print("\(attack.name) (\(releaseBinDir == nil ? "debug build" : "release build")): \(probes.count - failed.count) of \(probes.count) probes fine; attackers: \(timeline.summary); peak RSS \(rssMiB) MiB; kernel TCP memory (machine-wide) peaked at \(prober.peakKernelTCPKiB / 1024) MiB; proxy side all closed at \(proxySide.map { String(format: "%.1f s", $0) } ?? "never")")

            #expect(timeline.established >= Self.connections * 9 / 10,
                    "only \(timeline.established) of \(Self.connections) attackers connected: \(timeline.summary)")
            #expect(failed.count == 0, "\(failed.count) of \(probes.count) probes not answered 200 within \(Self.probeDeadline) s: \(failures.joined(separator: ", "))")
            // The attackers count as closed when slowhttptest saw them all closed, or when the
            // proxy's side held none of them any more (it resets slow readers, which
            // slowhttptest never counts).
            if let closedAt = [timeline.allClosedAt, proxySide].compactMap({ $0 }).min() {
                #expect(closedAt <= Self.attackersClosedBy, "the last attacker was closed at \(String(format: "%.1f", closedAt)) s (by \(Self.attackersClosedBy) s expected): \(timeline.summary)")
            } else {
                let last = timeline.rows.last!
                Issue.record("\(last.connected + last.pending) attackers still open when slowhttptest ended at \(last.second) s: \(timeline.summary)")
            }
            #expect(rssMiB < Self.rssBudgetMiB || underSanitizer, "peak RSS \(rssMiB) MiB (budget \(Self.rssBudgetMiB) MiB)")
        }
    }
}
