/// The connection pool of one upstream server as a value: which connections are idle, how many are
/// leased or connecting, and what to do on each event. The owner performs the I/O.
///
/// Idle connections are reused last-in first-out: the most recently used one is the least likely
/// to have been closed by the server, and the rest age out (nginx's keepalive cache does the same).
public struct PoolState<Conn: AnyObject> {
    public let maxActive: Int
    public let maxIdle: Int
    public private(set) var idle: [Conn] = []
    /// Leased to a request or connecting: counts against `maxActive`.
    public private(set) var active = 0

    public init(maxActive: Int, maxIdle: Int) {
        self.maxActive = maxActive
        self.maxIdle = maxIdle
        idle.reserveCapacity(min(maxIdle, 1024))
    }

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
            return .reuse(c)
        }
        if active < maxActive {
            active += 1
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

    /// Takes every idle connection out (for draining).
    public mutating func takeAllIdle() -> [Conn] {
        defer { idle.removeAll() }
        return idle
    }
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
