/// A histogram kept as plain counters on the loop thread and written out in Prometheus text
/// format at scrape time.
///
/// An observation is a binary search of the bounds and one add. (swift-prometheus's histogram,
/// which this replaces on the request path, takes a lock and adds to every bucket at or above the
/// value on each observation: about 500 instructions of every proxied request.)
public final class LoopHistogram {
    let name: String
    let help: String
    /// `key="value",` pairs, escaped, ready to go in front of `le`.
    let labelPrefix: String
    private let bounds: UnsafeMutablePointer<Double>
    private let boundCount: Int
    /// Observations per bucket, not cumulative; the last is above every bound.
    private let counts: UnsafeMutablePointer<UInt64>
    private var sum: Double = 0
    /// `name_bucket{labels,le="bound"} ` for each bucket, made once: formatting 129 bounds at
    /// every scrape was most of a scrape's cost.
    private let bucketPrefixes: [String]

    init(name: String, help: String, labels: [(String, String)], buckets: [Double]) {
        self.name = name
        self.help = help
        labelPrefix = labels.map { "\($0.0)=\"\(Self.escape($0.1))\"," }.joined()
        boundCount = buckets.count
        bounds = .allocate(capacity: buckets.count)
        bounds.initialize(from: buckets.sorted(), count: buckets.count)
        counts = .allocate(capacity: buckets.count + 1)
        counts.initialize(repeating: 0, count: buckets.count + 1)
        let prefix = "\(name)_bucket{\(labelPrefix)le=\""
        bucketPrefixes = buckets.sorted().map { "\(prefix)\($0)\"} " } + ["\(prefix)+Inf\"} "]
    }

    deinit {
        bounds.deallocate()
        counts.deallocate()
    }

    /// A NaN is dropped (it would make the sum NaN for good); a negative value counts as 0.
    public func record(_ value: Double) {
        guard !value.isNaN else { return }
        let value = max(0, value)
        // The first bound >= value, by binary search (the fine latency scheme has 128 bounds);
        // a value in the first bucket (a fast backend's) costs one comparison.
        var lo = 0, hi = boundCount
        if boundCount > 0 && value <= bounds[0] { hi = 0 }
        while lo < hi {
            let mid = (lo + hi) >> 1
            if value > bounds[mid] { lo = mid + 1 } else { hi = mid }
        }
        counts[lo] += 1
        sum += value
    }

    /// Its place in a registry's flat vector: a count per bucket (the last above every bound),
    /// then the sum.
    var valueCount: Int { boundCount + 2 }

    func write(into p: UnsafeMutablePointer<Double>) {
        for i in 0...boundCount { p[i] = Double(counts[i]) }
        p[boundCount + 1] = sum
    }

    /// The `_bucket`, `_sum` and `_count` lines of `values` (laid out as `write` lays them; the
    /// caller writes HELP and TYPE once per name).
    func render(into out: inout String, values: UnsafePointer<Double>) {
        var cumulative: Double = 0
        for i in 0...boundCount {
            cumulative += values[i]
            out += bucketPrefixes[i]
            out += MetricsRegistry.format(cumulative)
            out += "\n"
        }
        let plain = labelPrefix.isEmpty ? "" : "{\(labelPrefix.dropLast())}"
        out += "\(name)_sum\(plain) \(values[boundCount + 1])\n"
        out += "\(name)_count\(plain) \(MetricsRegistry.format(cumulative))\n"
    }

    /// Text as the format wants it: backslash and newline escaped, and double quote too in a
    /// label value (HELP text keeps its quotes).
    static func escape(_ s: String, quotes: Bool = true) -> String {
        var r = ""
        for c in s.unicodeScalars {  // scalars: "\r\n" is one Character, whose "\n" must be escaped
            switch c {
            case "\\": r += "\\\\"
            case "\"" where quotes: r += "\\\""
            case "\n": r += "\\n"
            default: r.unicodeScalars.append(c)
            }
        }
        return r
    }
}
