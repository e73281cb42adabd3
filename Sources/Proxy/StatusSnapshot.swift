import Telemetry

/// The document /status.json serves: the figures of the status page, regrouped from the very
/// exposition text /metrics serves (parsed back, never read from the counters a second way), so
/// the page always shows what a scraper sees, summed over workers the same way.
///
/// Counters and histogram buckets stay cumulative: the page takes rates and windowed percentiles
/// from the differences between two polls, as Prometheus's `rate()` and `histogram_quantile` do.
struct StatusSnapshot {
    private let samples: [String: [ExpositionSample]]

    init(exposition: [UInt8]) {
        samples = Dictionary(grouping: Exposition.parse(exposition), by: \.name)
    }

    /// The whole document, taken at unix time `time`.
    func json(time: Double) -> JSONValue {
        .object([
            ("time", .number(time)),
            ("connections", connections),
            ("requests", requests),
            ("latency", latency),
            ("backends", .array(backends)),
            ("workers", workers),
            ("process", process),
        ])
    }

    private var connections: JSONValue {
        .object([
            ("open", value("gatehouse_client_connections_open")),
            ("accepted", value("gatehouse_accepted_connections_total")),
            ("states", byLabel("gatehouse_client_connections", "state")),
        ])
    }

    /// Requests answered by status class, summed over backends, and requests in flight.
    private var requests: JSONValue {
        .object([
            ("total", sum("gatehouse_requests_total")),
            ("in_flight", value("gatehouse_requests_in_flight")),
            ("bad", value("gatehouse_bad_requests_total")),
            ("classes", byLabel("gatehouse_requests_total", "status_class")),
        ])
    }

    /// The request-duration histogram summed over backends (they share the bounds): cumulative
    /// counts for each finite `le`, in order; `count` is the `+Inf` bucket.
    private var latency: JSONValue {
        let family = "gatehouse_request_duration_seconds"
        let buckets = sums(series(family + "_bucket"), by: "le").filter { $0.key != "+Inf" }
        return .object([
            ("le", .array(buckets.map { .number(Double($0.key) ?? .nan) })),
            ("buckets", .array(buckets.map { .number($0.sum) })),
            ("count", sum(family + "_count")),
            ("sum", sum(family + "_sum")),
        ])
    }

    /// Each backend (in the order of the config) with its queue, requests and servers.
    private var backends: [JSONValue] {
        series("gatehouse_upstream_queue_length").compactMap { q in
            guard let name = q.label("backend") else { return nil }
            let servers = series("gatehouse_upstream_server_up").filter { $0.label("backend") == name }
            return .object([
                ("name", .string(name)),
                ("queue", .number(q.value)),
                ("requests", byLabel("gatehouse_requests_total", "status_class", where: ("backend", name))),
                ("servers", .array(servers.compactMap { $0.label("server").map { server(name, $0) } })),
            ])
        }
    }

    private func server(_ backend: String, _ server: String) -> JSONValue {
        let at = [("backend", backend), ("server", server)]
        return .object([
            ("server", .string(server)),
            ("up", value("gatehouse_upstream_server_up", at)),
            // Leased to a request or still connecting: the pool counts both against max_connections.
            ("active", value("gatehouse_upstream_connections", at + [("state", "active")])),
            ("idle", value("gatehouse_upstream_connections", at + [("state", "idle")])),
            ("idle_target", value("gatehouse_upstream_idle_target", at)),
            ("requests", value("gatehouse_upstream_requests_total", at)),
            ("connects", value("gatehouse_upstream_connects_total", at)),
            ("connect_errors", value("gatehouse_upstream_connect_errors_total", at)),
            ("failures", value("gatehouse_upstream_failures_total", at)),
        ])
    }

    /// With workers, the `worker="<slot>"` series of each live worker; a single process shows as
    /// worker 0, from its own series.
    private var workers: JSONValue {
        let busy = series("gatehouse_worker_loop_busy_seconds_total")
        let each: [JSONValue]
        if busy.isEmpty {
            each = [worker("0", busy: value("gatehouse_loop_busy_seconds_total"), rss: value("process_resident_memory_bytes"),
                           connections: value("gatehouse_client_connections_open"))]
        } else {
            each = busy.compactMap { $0.label("worker") }.map { w in
                worker(w, busy: value("gatehouse_worker_loop_busy_seconds_total", [("worker", w)]),
                       rss: value("gatehouse_worker_resident_memory_bytes", [("worker", w)]),
                       connections: value("gatehouse_worker_client_connections", [("worker", w)]))
            }
        }
        return .object([
            ("count", series("gatehouse_workers").isEmpty ? .number(1) : value("gatehouse_workers")),
            ("configured", value("gatehouse_workers_configured")),
            ("restarts", value("gatehouse_worker_restarts_total")),
            ("each", .array(each)),
        ])
    }

    private func worker(_ slot: String, busy: JSONValue, rss: JSONValue, connections: JSONValue) -> JSONValue {
        .object([("worker", .string(slot)), ("busy_seconds", busy), ("rss_bytes", rss), ("connections", connections)])
    }

    private var process: JSONValue {
        .object([
            ("rss_bytes", value("process_resident_memory_bytes")),
            ("cpu_seconds", value("process_cpu_seconds_total")),
            ("open_fds", value("process_open_fds")),
            ("start_time", value("process_start_time_seconds")),
            ("loop_busy_seconds", value("gatehouse_loop_busy_seconds_total")),
        ])
    }

    // MARK: Reading the samples

    private func series(_ name: String) -> [ExpositionSample] { samples[name] ?? [] }

    /// The first series of `name` that carries every label in `labels`; null when there is none
    /// (a figure the text lacks shows as missing, never as a made-up zero).
    private func value(_ name: String, _ labels: [(String, String)] = []) -> JSONValue {
        let hit = series(name).first { s in labels.allSatisfy { s.label($0.0) == $0.1 } }
        return hit.map { .number($0.value) } ?? .null
    }

    /// The sum over every series of `name`; null when there is none.
    private func sum(_ name: String) -> JSONValue {
        let all = series(name)
        return all.isEmpty ? .null : .number(all.reduce(0) { $0 + $1.value })
    }

    /// `{label value: sum}` over the series of `name` (those with label `filter` only, if given).
    private func byLabel(_ name: String, _ label: String, where filter: (String, String)? = nil) -> JSONValue {
        let chosen = series(name).filter { s in filter.map { s.label($0.0) == $0.1 } ?? true }
        return .object(sums(chosen, by: label).map { ($0.key, .number($0.sum)) })
    }

    /// The sum of the values for each value of `label`, in the order they first appear.
    private func sums(_ list: [ExpositionSample], by label: String) -> [(key: String, sum: Double)] {
        var out: [(key: String, sum: Double)] = []
        var at: [String: Int] = [:]
        for s in list {
            guard let key = s.label(label) else { continue }
            if let i = at[key] {
                out[i].sum += s.value
            } else {
                at[key] = out.count
                out.append((key, s.value))
            }
        }
        return out
    }
}
