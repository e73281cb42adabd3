/// Passive health of one server: after `maxFails` failures in a row it is skipped for
/// `failTimeout`, then tried again (one success clears it). As nginx's max_fails/fail_timeout.
///
/// A server that takes requests and answers none (hung: accepted, then silent) is taken out at the
/// first request whose head wait runs out with no response head from the server since that
/// request was sent, rather than after `maxFails` such timeouts, each of which takes the whole
/// `upstream_header`. A server that answers other requests meanwhile is slow on one request, not
/// hung: that timeout counts as one failure.
public struct HealthState: Sendable, Equatable {
    public let maxFails: Int
    public let failTimeout: UInt64
    public private(set) var consecutiveFails = 0
    public private(set) var downUntil: UInt64 = 0
    /// When the server last sent a response head; 0: never.
    public private(set) var lastAnswerAt: UInt64 = 0

    public init(maxFails: Int, failTimeout: UInt64) {
        self.maxFails = maxFails
        self.failTimeout = failTimeout
    }

    public func isAvailable(now: UInt64) -> Bool { now >= downUntil }

    /// Returns true when this failure took the server out of rotation.
    @discardableResult
    public mutating func failed(now: UInt64) -> Bool {
        consecutiveFails += 1
        if consecutiveFails >= maxFails {
            consecutiveFails = 0
            downUntil = now + failTimeout
            return true
        }
        return false
    }

    /// A response head arrived from the server.
    public mutating func answered(now: UInt64) { lastAnswerAt = now }

    /// A head wait that began at `since` ran out with nothing received. True when the server sent
    /// no head since then, so is hung: it is taken out of rotation now (or kept out), and requests
    /// still waiting on it may as well go elsewhere. False for a server that answered meanwhile.
    public mutating func headTimedOut(waitingSince since: UInt64, now: UInt64) -> Bool {
        guard lastAnswerAt < since else { return false }
        consecutiveFails = 0
        downUntil = max(downUntil, now + failTimeout)
        return true
    }

    public mutating func succeeded() {
        consecutiveFails = 0
        downUntil = 0
    }
}

/// Picks a server index: round-robin or least connections, among available servers with capacity.
public struct Balancer: Sendable {
    public enum Method: Sendable { case roundRobin, leastConnections }
    public let method: Method
    private var next = 0

    public init(method: Method) { self.method = method }

    /// `available(i)` says whether server i is healthy and `load(i)` how many connections it has
    /// active; `capacity(i)` whether it can take one now. `excluding` skips the server a retry left.
    public mutating func pick(count: Int, excluding: Int?, available: (Int) -> Bool, capacity: (Int) -> Bool, load: (Int) -> Int) -> Int? {
        guard count > 0 else { return nil }
        switch method {
        case .roundRobin:
            for k in 0..<count {
                let i = (next + k) % count
                if i != excluding && available(i) && capacity(i) {
                    next = (i + 1) % count
                    return i
                }
            }
            return nil
        case .leastConnections:
            var best: Int?
            for k in 0..<count {
                let i = (next + k) % count
                guard i != excluding, available(i), capacity(i) else { continue }
                if best == nil || load(i) < load(best!) { best = i }
            }
            if let b = best { next = (b + 1) % count }
            return best
        }
    }
}
