/// A count that leaks at a steady rate: events add one, time takes `perSecond` away. Past
/// `limit`, the events come faster than any honest peer sends them. (An HTTP/2 client that now and
/// then sends something odd is forgiven; a flood is not.) Time is passed in, so tests inject it.
public struct LeakyBucket: Sendable, Equatable {
    public let limit: Double
    public let perSecond: Double
    public private(set) var level = 0.0
    private var at: UInt64 = 0

    public init(limit: Double, perSecond: Double) {
        self.limit = limit
        self.perSecond = perSecond
    }

    /// One more event at `now` (monotonic ns); true when the bucket is over its limit.
    public mutating func add(now: UInt64) -> Bool {
        if at != 0 { level = max(0, level - Double(now &- at) * 1e-9 * perSecond) }
        at = now
        level += 1
        return level > limit
    }
}
