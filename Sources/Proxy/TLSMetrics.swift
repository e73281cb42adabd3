import Telemetry
import TLS

/// The TLS metric families, read from `TLSStats`, the listeners' session caches and the ticket
/// key ring at scrape time. OpenSSL's own buffer bytes are not exported: OpenSSL does not report
/// them (RELEASE_BUFFERS gives them back whenever a connection is idle; RSS shows the rest).
final class TLSMetrics {
    unowned let stats: TLSStats
    var contexts: [TLSServerContext] = []
    private let open: Gauge
    private let handshakes: [[MirroredCounter]]
    private let failures: [MirroredCounter]
    private let failedTotal: MirroredCounter
    private let cacheHits: MirroredCounter
    private let cacheMisses: MirroredCounter
    private let cacheEntries: Gauge
    private let ticketsIssued: MirroredCounter
    private let ticketResumes: [MirroredCounter]
    private let ticketsRefused: MirroredCounter

    init(registry r: MetricsRegistry, stats: TLSStats) {
        self.stats = stats
        open = r.gauge("gatehouse_tls_connections", "TLS client connections open.")
        let help = "TLS handshakes by result, protocol version and whether the session was resumed."
        handshakes = ["TLSv1.2", "TLSv1.3"].map { v in
            ["false", "true"].map { r.counter("gatehouse_tls_handshakes_total", help, [("result", "ok"), ("version", v), ("resumed", $0)]) }
        }
        failedTotal = r.counter("gatehouse_tls_handshakes_total", help, [("result", "failed"), ("version", "none"), ("resumed", "false")])
        failures = TLSStats.Failure.allCases.map {
            r.counter("gatehouse_tls_handshake_failures_total", "TLS handshakes that failed, by reason.", [("reason", $0.label)])
        }
        let duration = r.latency("gatehouse_tls_handshake_duration_seconds", "Time from the first handshake byte to its end.")
        stats.onHandshakeDuration = { nanos in duration.record(Double(nanos) * 1e-9) }
        cacheHits = r.counter("gatehouse_tls_session_cache_hits_total", "TLS sessions resumed from the server-side cache (by session id).")
        cacheMisses = r.counter("gatehouse_tls_session_cache_misses_total", "Session ids a client offered that the cache no longer had.")
        cacheEntries = r.gauge("gatehouse_tls_session_cache_entries", "Sessions in the server-side cache.")
        ticketsIssued = r.counter("gatehouse_tls_tickets_issued_total", "Session tickets issued.")
        ticketResumes = ["current", "previous"].map {
            r.counter("gatehouse_tls_ticket_resumptions_total", "Sessions resumed by ticket, by the key that decrypted it.", [("key", $0)])
        }
        ticketsRefused = r.counter("gatehouse_tls_tickets_refused_total", "Tickets under a key no longer held (a full handshake followed).")
    }

    func refresh() {
        open.set(Double(stats.open))
        for v in 0..<2 { for r in 0..<2 { handshakes[v][r].set(total: stats.handshakes[v][r]) } }
        failedTotal.set(total: stats.failures.reduce(0, +))
        for f in TLSStats.Failure.allCases { failures[f.rawValue].set(total: stats.failures[f.rawValue]) }
        var hits = 0, misses = 0, entries = 0
        for c in contexts {
            let s = c.sessionCache
            hits += s.hits
            misses += s.misses
            entries += s.entries
        }
        cacheHits.set(total: hits)
        cacheMisses.set(total: misses)
        cacheEntries.set(Double(entries))
        let t = TLSServerContext.ticketStats
        ticketsIssued.set(total: Int(t.issued))
        ticketResumes[0].set(total: Int(t.current))
        ticketResumes[1].set(total: Int(t.previous))
        ticketsRefused.set(total: Int(t.refused))
    }
}
