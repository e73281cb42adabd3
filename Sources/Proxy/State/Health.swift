/// Passive health of one server: after `maxFails` failures in a row it is skipped for
/// `failTimeout`, then tried again (one success clears it). As nginx's max_fails/fail_timeout.
public struct HealthState: Sendable, Equatable {
    public let maxFails: Int
    public let failTimeout: UInt64
    public private(set) var consecutiveFails = 0
    public private(set) var downUntil: UInt64 = 0

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
