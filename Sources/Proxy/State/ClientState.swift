/// What a client connection is doing, for the connections-by-state gauge.
public enum ClientPhase: Int, CaseIterable, Sendable {
    case reading, waitingUpstream, writing, idle
    /// Upgraded (WebSocket): bytes relayed both ways, no longer HTTP.
    case tunnel
    /// HTTP/2: many requests at once; its streams are counted apart.
    case h2

    public var label: String {
        switch self {
        case .reading: return "reading"
        case .waitingUpstream: return "waiting_upstream"
        case .writing: return "writing"
        case .idle: return "idle"
        case .tunnel: return "tunnel"
        case .h2: return "http2"
        }
    }
}

/// The keep-alive life of one client connection as a value: after each response it says whether
/// to go on with bytes already buffered, wait (briefly, with the task) for the next request, or
/// close; when that brief wait ends it says whether to park (task and buffer given back) or close.
public struct ClientConnectionState: Sendable {
    public let keepAliveTimeout: UInt64
    public let headerTimeout: UInt64
    public let parkAfter: UInt64
    public let maxRequests: Int
    public private(set) var requests = 0
    /// When the connection last became idle (or was accepted).
    public private(set) var idleSince: UInt64
    /// Whether the idle period is before the first request (header timeout) or between requests.
    private var firstRequest = true

    public init(keepAliveTimeout: UInt64, headerTimeout: UInt64, parkAfter: UInt64, maxRequests: Int, now: UInt64) {
        self.keepAliveTimeout = keepAliveTimeout
        self.headerTimeout = headerTimeout
        self.parkAfter = parkAfter
        self.maxRequests = maxRequests
        self.idleSince = now
    }

    /// The end of the idle period: keep-alive timeout, or header timeout before the first request.
    public var idleDeadline: UInt64 { idleSince + (firstRequest ? headerTimeout : keepAliveTimeout) }

    public enum AfterResponse: Equatable, Sendable {
        /// Pipelined bytes are already here: parse the next request now.
        case nextBuffered
        /// Wait with the task until `until` for the next request.
        case waitNext(until: UInt64)
        case close
    }

    public mutating func responseDone(keepAlive: Bool, draining: Bool, buffered: Bool, now: UInt64) -> AfterResponse {
        requests += 1
        firstRequest = false
        if !keepAlive || draining || requests >= maxRequests { return .close }
        if buffered { return .nextBuffered }
        idleSince = now
        return .waitNext(until: min(now + parkAfter, idleDeadline))
    }

    /// The first wait after accept.
    public func firstWait(now: UInt64) -> UInt64 { min(now + parkAfter, idleDeadline) }

    public enum AfterWait: Equatable, Sendable {
        case park(until: UInt64)
        case close
    }

    /// The brief wait for the next request ended with nothing: park until the idle deadline, or close.
    public func waitExpired(now: UInt64) -> AfterWait {
        let deadline = idleDeadline
        return now >= deadline ? .close : .park(until: deadline)
    }

    /// The first byte of a request arrived at `now`: the whole head must arrive by this.
    public func headerDeadline(now: UInt64) -> UInt64 { now + headerTimeout }
}
