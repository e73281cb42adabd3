/// Keeps an error log readable when something fails thousands of times a second: each kind of
/// line (a key: the event and, say, the server) may come in a burst of `burst`, then one per
/// `interval`; the lines held back are counted and told with the next line of that key.
/// A value driven by the caller's clock, so it is tested without time passing.
public struct LogRateLimit: Sendable {
    public let burst: Int
    public let interval: UInt64
    private var buckets: [Int: Bucket] = [:]

    private struct Bucket: Sendable {
        var tokens: Int
        var refilledAt: UInt64
        var suppressed: Int
    }

    public init(burst: Int = 10, interval: UInt64 = 1_000_000_000) {
        self.burst = burst
        self.interval = interval
    }

    /// Whether a line with `key` may be written now; if so, how many lines of the key were held
    /// back since the last one written.
    public mutating func admit(_ key: Int, now: UInt64) -> (write: Bool, suppressed: Int) {
        var b = buckets[key] ?? Bucket(tokens: burst, refilledAt: now, suppressed: 0)
        let earned = Int((now &- b.refilledAt) / interval)
        if earned > 0 {
            b.tokens = min(burst, b.tokens + earned)
            b.refilledAt &+= UInt64(earned) &* interval
        }
        defer { buckets[key] = b }
        guard b.tokens > 0 else {
            b.suppressed += 1
            return (false, 0)
        }
        b.tokens -= 1
        let held = b.suppressed
        b.suppressed = 0
        return (true, held)
    }
}
