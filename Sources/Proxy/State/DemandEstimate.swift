/// How many connections one server's pool has needed at once lately: the number it is worth keeping
/// open, leased plus idle. It rises at once with the connections in use, and at the end of each
/// `period` falls halfway toward the peak of that period (as HAProxy halves its idle connections
/// every `pool-purge-delay`, 5 s by default).
///
/// So requests that arrive in waves (thousands every 50 ms from clients that started together)
/// find the previous wave's connections idle instead of opening them again, while a pool that a
/// burst grew shrinks by half every period once demand stays lower. Each event is O(1); a quiet
/// stretch of many periods is caught up at the next event in at most ~64 halvings.
public struct DemandEstimate: Sendable, Equatable {
    public let period: UInt64
    /// Connections worth keeping open (leased and idle together).
    public private(set) var estimate = 0
    /// The most connections in use at once in the current period.
    public private(set) var peak = 0
    /// When the current period ends; 0 before the first event.
    private var periodEnd: UInt64 = 0

    public init(period: UInt64) {
        precondition(period > 0)
        self.period = period
    }

    /// `inUse` connections are leased (or connecting) now.
    @inline(__always)
    public mutating func observe(inUse: Int) {
        if inUse > peak {
            peak = inUse
            if inUse > estimate { estimate = inUse }
        }
    }

    /// Closes the periods that ended before `now`. `inUse` has not changed since the last event,
    /// so it was the peak of every period that passed without one.
    @inline(__always)
    public mutating func advance(now: UInt64, inUse: Int) {
        guard now >= periodEnd else { return }
        if periodEnd != 0 {
            decay(toward: peak)
            var quiet = (now - periodEnd) / period
            while quiet > 0 && estimate > inUse {
                decay(toward: inUse)
                quiet -= 1
            }
        }
        peak = inUse
        periodEnd = now + period
    }

    private mutating func decay(toward p: Int) {
        if estimate > p { estimate = p + (estimate - p) / 2 }
    }
}
