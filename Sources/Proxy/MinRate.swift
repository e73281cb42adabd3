import Config

/// The slowest a peer may move a body, Kestrel-style: over the time spent waiting on the peer
/// (not on the backend), the bytes moved must keep up with `bytesPerSecond`, once `grace` of
/// waiting has passed. A value that turns each wait into a deadline, so it needs no timer of its
/// own: the owner waits until `deadline(now:)` and, when that passes, asks `exceeded`.
struct MinRate {
    let bytesPerSecond: UInt64
    let grace: UInt64
    /// Nanoseconds spent waiting on the peer so far.
    private(set) var waited: UInt64 = 0
    /// Bytes the peer has moved so far.
    private(set) var bytes: UInt64 = 0

    init(bytesPerSecond: Int, grace: UInt64) {
        self.bytesPerSecond = UInt64(max(0, bytesPerSecond))
        self.grace = grace
    }

    /// `limits.min_rate` after `limits.min_rate_grace`.
    init(_ limits: Limits) {
        self.init(bytesPerSecond: limits.minRate, grace: limits.minRateGrace)
    }

    var enabled: Bool { bytesPerSecond > 0 }

    /// The waiting time the bytes moved so far have earned.
    private var allowed: UInt64 {
        let earned = bytes > UInt64.max / 1_000_000_000 ? UInt64.max : bytes * 1_000_000_000 / bytesPerSecond
        return max(grace, earned)
    }

    /// The latest end of a wait that begins at `now`, or `limit` when that comes first.
    func deadline(now: UInt64, limit: UInt64) -> UInt64 {
        guard enabled else { return limit }
        let left = allowed > waited ? allowed - waited : 0
        return min(limit, now &+ left)
    }

    /// Records a wait on the peer from `start` to `end` after which it moved `moved` bytes.
    mutating func record(waitFrom start: UInt64, to end: UInt64, moved: Int) {
        if end > start { waited += end - start }
        bytes += UInt64(max(0, moved))
    }

    /// The peer has used up the time its bytes earned.
    var exceeded: Bool { enabled && waited >= allowed }
}
