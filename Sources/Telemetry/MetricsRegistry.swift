import Glibc
import Prometheus

/// A counter whose total is kept elsewhere (a plain integer on the loop, cheaper than an atomic per
/// event) and brought up to date at scrape time.
public final class MirroredCounter {
    let counter: Counter
    private var exported: Int64 = 0
    private var exportedDouble: Double = 0

    init(_ counter: Counter) { self.counter = counter }

    public func set(total: Int) {
        let t = Int64(total)
        if t > exported {
            counter.increment(by: t - exported)
            exported = t
        }
    }

    /// For fractional totals (seconds).
    public func set(total: Double) {
        if total > exportedDouble {
            counter.increment(by: total - exportedDouble)
            exportedDouble = total
        }
    }
}

/// The metric families of Gatehouse, exposed in Prometheus text format through swift-prometheus.
/// Names carry the `gatehouse_` prefix except the standard `process_*` ones.
public final class MetricsRegistry {
    private let registry = PrometheusCollectorRegistry()
    private var buffer: [UInt8] = []
    private var histograms: [LoopHistogram] = []

    public init() { buffer.reserveCapacity(64 * 1024) }

    public func gauge(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Gauge {
        registry.makeGauge(descriptor: Self.descriptor(name, help), labels: labels)
    }

    public func counter(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> MirroredCounter {
        MirroredCounter(registry.makeCounter(descriptor: Self.descriptor(name, help), labels: labels))
    }

    /// A latency histogram in seconds (`latencyBuckets`), kept on the loop (see `LoopHistogram`)
    /// and rendered after the registry's families.
    public func latency(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> LoopHistogram {
        let h = LoopHistogram(name: name, help: help, labels: labels, buckets: Self.latencyBuckets)
        histograms.append(h)
        return h
    }

    /// Exponential, 8 buckets per doubling: 1 ms × 2^(k/8) for k = 0...127, from 1 ms to 60.0968 s.
    /// Neighbouring bounds are 9.05% apart, so a quantile `histogram_quantile` interpolates lies
    /// within 9.05% of the true one wherever it falls (with 1-2-5 steps every request of a 50 ms
    /// backend landed in one bucket, 50-100 ms, and p50 read 75 ms). Bounds are rounded to 6
    /// significant digits so the `le` labels stay short.
    public static let latencyBuckets: [Double] = (0..<128).map { k in
        let v = 0.001 * pow(2, Double(k) / 8)
        let scale = pow(10, 5 - floor(log10(v)))
        return (v * scale).rounded() / scale
    }

    private static func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    /// The exposition text.
    public func render() -> [UInt8] {
        buffer.removeAll(keepingCapacity: true)
        registry.emit(into: &buffer)
        var text = ""
        var named = Set<String>()
        for h in histograms where !named.contains(h.name) {
            // One HELP and TYPE per family, then every label set of that name.
            named.insert(h.name)
            text += "# HELP \(h.name) \(LoopHistogram.escape(h.help, quotes: false))\n# TYPE \(h.name) histogram\n"
            for same in histograms where same.name == h.name { same.render(into: &text) }
        }
        buffer.append(contentsOf: text.utf8)
        return buffer
    }
}
