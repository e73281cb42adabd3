/// The connection pool of one upstream server as a value: which connections are idle, how many are
/// leased or connecting, and what to do on each event. The owner performs the I/O.
///
/// Idle connections are reused last-in first-out: the most recently used one is the least likely
/// to have been closed by the server, and the rest age out (nginx's keepalive cache does the same).
///
/// How many are kept follows recent demand (`DemandEstimate`). A reusable connection that comes
/// back is kept (up to `maxIdle`): while demand holds, leased plus idle never exceed the estimate,
/// since a connection is opened only when none is idle. When the estimate falls, the owner closes
/// the surplus oldest first, a few after each release (`takeSurplus`): the connection just used is
/// warm, the oldest are the likeliest to have been closed by the server.
public struct PoolState<Conn: AnyObject> {
    public let maxActive: Int
    /// The most idle connections kept, whatever the demand (`max_idle`; `maxActive` when automatic).
    public let maxIdle: Int
    /// Oldest first: the most recently used is last.
    public private(set) var idle: [Conn] = []
    /// Leased to a request or connecting: counts against `maxActive`.
    public private(set) var active = 0
    public private(set) var demand: DemandEstimate

    /// `maxIdle` nil: as many as demand asks for (bounded by `maxActive`). `demandPeriod`: how
    /// often the demand estimate falls halfway toward the recent peak.
    public init(maxActive: Int, maxIdle: Int?, demandPeriod: UInt64 = PoolDefaults.demandPeriod) {
        self.maxActive = maxActive
        self.maxIdle = min(maxIdle ?? maxActive, maxActive)
        demand = DemandEstimate(period: demandPeriod)
        idle.reserveCapacity(min(self.maxIdle, 1024))
    }

    /// Idle connections worth keeping now: the estimate less those leased, at most `maxIdle`.
    @inline(__always)
    public var idleTarget: Int { max(0, min(demand.estimate - active, maxIdle)) }

    /// Whether a reusable connection released now would be kept.
    public var keepsRelease: Bool { idle.count < maxIdle }

    /// Time passed: the demand estimate closes the periods that ended.
    @inline(__always)
    public mutating func advance(now: UInt64) { demand.advance(now: now, inUse: active) }

    public enum LeaseAction {
        case reuse(Conn)
        case connect
        case full
    }

    /// Whether a lease could be granted now without waiting.
    public var hasCapacity: Bool { !idle.isEmpty || active < maxActive }

    public mutating func lease() -> LeaseAction {
        if let c = idle.popLast() {
            active += 1
            demand.observe(inUse: active)
            return .reuse(c)
        }
        if active < maxActive {
            active += 1
            demand.observe(inUse: active)
            return .connect
        }
        return .full
    }

    /// A connect that `lease` asked for failed: its slot is free again.
    public mutating func connectFailed() { active -= 1 }

    public enum ReleaseAction: Equatable {
        /// Keep it idle in the pool.
        case park
        /// Close it; its slot is free.
        case close
    }

    /// A leased connection comes back. `reusable` is the outcome of `ReuseChecklist`.
    public mutating func release(_ c: Conn, reusable: Bool) -> ReleaseAction {
        active -= 1
        if reusable && idle.count < maxIdle {
            idle.append(c)
            return .park
        }
        return .close
    }

    /// An idle connection was closed (server closed it, or it idled out).
    public mutating func removeIdle(_ c: Conn) {
        if let i = idle.lastIndex(where: { $0 === c }) { idle.remove(at: i) }
    }

    /// Takes out up to `limit` idle connections beyond `idleTarget`, oldest first, to close.
    public mutating func takeSurplus(limit: Int) -> [Conn] {
        let n = min(idle.count - idleTarget, limit)
        guard n > 0 else { return [] }
        defer { idle.removeFirst(n) }
        return Array(idle[0..<n])
    }

    /// Takes every idle connection out (for draining).
    public mutating func takeAllIdle() -> [Conn] {
        defer { idle.removeAll() }
        return idle
    }
}

/// Pool settings that are not configuration.
public enum PoolDefaults {
    /// How often the demand estimate halves its distance to the recent peak (HAProxy's default
    /// `pool-purge-delay`, which halves idle connections as often).
    public static let demandPeriod: UInt64 = 5_000_000_000
    /// Surplus idle connections closed per release: trimming a pool a burst grew is spread over
    /// the requests that follow instead of stalling one loop turn with thousands of closes.
    public static let trimPerRelease = 8
}

/// When an upstream connection may go back to the pool (STYLE.md habit 5; nginx keepalive module).
public struct ReuseChecklist: Sendable {
    public var responseComplete: Bool
    public var requestBodySent: Bool
    public var serverKeepAlive: Bool
    /// Bytes beyond the response's end arrived: the server is out of step with us.
    public var extraBytes: Bool
    public var errorSeen: Bool
    public var requestsServed: Int
    public var maxRequests: Int
    public var draining: Bool

    public init(responseComplete: Bool, requestBodySent: Bool, serverKeepAlive: Bool, extraBytes: Bool,
                errorSeen: Bool, requestsServed: Int, maxRequests: Int, draining: Bool) {
        self.responseComplete = responseComplete
        self.requestBodySent = requestBodySent
        self.serverKeepAlive = serverKeepAlive
        self.extraBytes = extraBytes
        self.errorSeen = errorSeen
        self.requestsServed = requestsServed
        self.maxRequests = maxRequests
        self.draining = draining
    }

    public var reusable: Bool {
        responseComplete && requestBodySent && serverKeepAlive && !extraBytes && !errorSeen
            && requestsServed < maxRequests && !draining
    }
}
