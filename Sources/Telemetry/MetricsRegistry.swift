import Glibc

/// A gauge: a value set at scrape time.
public final class Gauge {
    fileprivate var value: Double = 0
    public func set(_ v: Double) { value = v }
}

/// A counter whose total is kept elsewhere (a plain integer on the loop, cheaper than an atomic per
/// event) and brought up to date at scrape time.
public final class MirroredCounter {
    fileprivate var value: Double = 0
    public func set(total: Int) { value = max(value, Double(total)) }
    /// For fractional totals (seconds).
    public func set(total: Double) { value = max(value, total) }
}

/// The metric families of Gatehouse in Prometheus text format. Names carry the `gatehouse_`
/// prefix except the standard `process_*` ones.
///
/// Every value also has a place in one flat vector of Doubles (`snapshot`): with workers, each
/// worker publishes its vector to shared memory and the one serving /metrics renders the sums
/// (`render(slots:)`), so counters and histograms count every worker's work, including workers
/// that have exited, and gauges add up the live ones.
public final class MetricsRegistry {
    public enum Kind: String, Sendable { case counter, gauge }

    /// How a gauge adds up across workers (counters and histograms always sum).
    public enum Across { case sum, max, min }

    fileprivate final class Family {
        let name: String
        let help: String
        let kind: Kind
        let across: Across
        var series: [(labels: String, value: AnyObject)] = []
        init(name: String, help: String, kind: Kind, across: Across) {
            self.name = name
            self.help = help
            self.kind = kind
            self.across = across
        }
    }

    private var families: [Family] = []
    private var histograms: [LoopHistogram] = []
    private var buffer: [UInt8] = []

    public init() { buffer.reserveCapacity(64 * 1024) }

    public func gauge(_ name: String, _ help: String, _ labels: [(String, String)] = [], across: Across = .sum) -> Gauge {
        let g = Gauge()
        family(name, help, .gauge, across).series.append((Self.labelText(labels), g))
        return g
    }

    public func counter(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> MirroredCounter {
        let c = MirroredCounter()
        family(name, help, .counter, .sum).series.append((Self.labelText(labels), c))
        return c
    }

    /// A latency histogram in seconds (`latencyBuckets`), kept on the loop (see `LoopHistogram`)
    /// and rendered after the other families.
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

    private func family(_ name: String, _ help: String, _ kind: Kind, _ across: Across) -> Family {
        if let f = families.first(where: { $0.name == name }) { return f }
        let f = Family(name: name, help: help, kind: kind, across: across)
        families.append(f)
        return f
    }

    // MARK: The flat vector

    /// How many Doubles `snapshot` writes.
    public var valueCount: Int {
        families.reduce(0) { $0 + $1.series.count } + histograms.reduce(0) { $0 + $1.valueCount }
    }

    /// A hash of what the vector holds (every series and histogram, in order): two processes add
    /// up their vectors only when it is the same.
    public var layoutHash: UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        func mix(_ s: String) {
            for b in s.utf8 {
                h ^= UInt64(b)
                h = h &* 0x100_0000_01B3
            }
            h ^= 0xFF
            h = h &* 0x100_0000_01B3
        }
        for f in families { for s in f.series { mix(f.name + "{" + s.labels) } }
        for h in histograms { mix(h.name + "{" + h.labelPrefix + "#\(h.valueCount)") }
        return h == 0 ? 1 : h
    }

    /// What each entry of the vector is, in order: `name{labels}` for a series, `name{labels}#k`
    /// for a histogram's k-th value. Workers of different configs (before and after a reload)
    /// add up their vectors by these.
    public var keys: [String] {
        var k: [String] = []
        for f in families { for s in f.series { k.append(f.name + "{" + s.labels + "}") } }
        for h in histograms { for j in 0..<h.valueCount { k.append(h.name + "{" + h.labelPrefix + "}#\(j)") } }
        return k
    }

    /// Whether entry i of the vector only ever grows (a counter, a histogram count or sum): a
    /// worker started in a slot adds its predecessor's final values to these.
    public var monotonic: [Bool] {
        var m: [Bool] = []
        for f in families { m += Array(repeating: f.kind == .counter, count: f.series.count) }
        for h in histograms { m += Array(repeating: true, count: h.valueCount) }
        return m
    }

    /// Writes every value, in registration order, then every histogram's counts and sum.
    public func snapshot(into p: UnsafeMutablePointer<Double>) {
        var i = 0
        for f in families {
            for s in f.series {
                p[i] = Self.value(s.value)
                i += 1
            }
        }
        for h in histograms {
            h.write(into: p + i)
            i += h.valueCount
        }
    }

    // MARK: Rendering

    /// The exposition text of this process's own values.
    public func render() -> [UInt8] {
        let n = valueCount
        let own = UnsafeMutablePointer<Double>.allocate(capacity: max(n, 1))
        defer { own.deallocate() }
        snapshot(into: own)
        return render(values: UnsafePointer(own), extra: "")
    }

    /// One worker's published vector in this registry's order (NaN where that worker has no such
    /// series: it runs another config), and whether that worker is alive (its gauges count).
    public struct Slot {
        public let index: Int
        public let values: UnsafePointer<Double>
        public let alive: Bool
        public init(index: Int, values: UnsafePointer<Double>, alive: Bool) {
            self.index = index
            self.values = values
            self.alive = alive
        }
    }

    /// The exposition text summed over `slots` (counters and histograms over all, gauges over the
    /// live ones, by each family's `Across`), then `perWorker` families: for each name given, the
    /// value of that series in each live slot, labelled `worker="<slot>"`.
    public func render(slots: [Slot], perWorker: [(series: String, name: String, help: String, kind: Kind)]) -> [UInt8] {
        let n = valueCount
        let sums = UnsafeMutablePointer<Double>.allocate(capacity: max(n, 1))
        defer { sums.deallocate() }
        var i = 0
        for f in families {
            for _ in f.series {
                let live = slots.filter { $0.alive || f.kind == .counter }.map { $0.values[i] }.filter { !$0.isNaN }
                switch f.kind == .counter ? .sum : f.across {
                case .sum: sums[i] = live.reduce(0, +)
                case .max: sums[i] = live.max() ?? 0
                case .min: sums[i] = live.min() ?? 0
                }
                i += 1
            }
        }
        for k in i..<n { sums[k] = slots.reduce(0) { $0 + ($1.values[k].isNaN ? 0 : $1.values[k]) } }
        var extra = ""
        for w in perWorker {
            guard let at = index(of: w.series) else { continue }
            extra += "# HELP \(w.name) \(LoopHistogram.escape(w.help, quotes: false))\n# TYPE \(w.name) \(w.kind.rawValue)\n"
            for s in slots where s.alive && !s.values[at].isNaN { extra += "\(w.name){worker=\"\(s.index)\"} \(Self.format(s.values[at]))\n" }
        }
        return render(values: UnsafePointer(sums), extra: extra)
    }

    /// The place in the vector of the series written `name` or `name{labels}`.
    private func index(of series: String) -> Int? {
        var i = 0
        for f in families {
            for s in f.series {
                if series == (s.labels.isEmpty ? f.name : "\(f.name){\(s.labels)}") { return i }
                i += 1
            }
        }
        return nil
    }

    private func render(values: UnsafePointer<Double>, extra: String) -> [UInt8] {
        var text = ""
        var i = 0
        for f in families {
            text += "# HELP \(f.name) \(LoopHistogram.escape(f.help, quotes: false))\n# TYPE \(f.name) \(f.kind.rawValue)\n"
            for s in f.series {
                text += s.labels.isEmpty ? f.name : "\(f.name){\(s.labels)}"
                text += " \(Self.format(values[i]))\n"
                i += 1
            }
        }
        var named = Set<String>()
        var offsets: [ObjectIdentifier: Int] = [:]
        for h in histograms {
            offsets[ObjectIdentifier(h)] = i
            i += h.valueCount
        }
        for h in histograms where !named.contains(h.name) {
            // One HELP and TYPE per family, then every label set of that name.
            named.insert(h.name)
            text += "# HELP \(h.name) \(LoopHistogram.escape(h.help, quotes: false))\n# TYPE \(h.name) histogram\n"
            for same in histograms where same.name == h.name { same.render(into: &text, values: values + offsets[ObjectIdentifier(same)]!) }
        }
        text += extra
        buffer.removeAll(keepingCapacity: true)
        buffer.append(contentsOf: text.utf8)
        return buffer
    }

    private static func value(_ o: AnyObject) -> Double {
        if let g = o as? Gauge { return g.value }
        return (o as! MirroredCounter).value
    }

    /// Whole numbers without a fraction, as counters read best.
    static func format(_ v: Double) -> String {
        if v.isFinite && v == v.rounded() && abs(v) < 1e15 { return String(Int64(v)) }
        return "\(v)"
    }

    private static func labelText(_ labels: [(String, String)]) -> String {
        labels.map { "\($0.0)=\"\(LoopHistogram.escape($0.1))\"" }.joined(separator: ",")
    }
}
