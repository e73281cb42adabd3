/// Everything a backend group decides, as one value: each server's pool and passive health, the
/// balancer, and the queue of requests waiting for a connection. Each event (a request wants a
/// connection, a connect failed, a connection came back, a server failed, a waiter timed out, an
/// idle connection closed) is a mutating call that returns what to do; the owner (`UpstreamGroup`)
/// does it: sockets, timers, continuations. `now` is a parameter so tests bring their own clock.
/// (A connect that succeeds changes nothing here: its slot was reserved when `.connect` was returned.)
///
/// Servers are indices. `Conn` is a connection record and `Waiter` a queued request, both opaque
/// here. The shape follows async-http-client's connection pool state machine.
public struct GroupState<Conn: AnyObject, Waiter: AnyObject> {
    /// One server: its connections and its passive health.
    public struct Server {
        public internal(set) var pool: PoolState<Conn>
        public internal(set) var health: HealthState
    }

    public private(set) var servers: [Server]
    public private(set) var queue: WaitQueue<Waiter>
    private var balancer: Balancer
    /// Once set, released connections are closed, never kept or handed over.
    public private(set) var draining = false

    /// `maxIdle` nil: idle connections follow demand (see `PoolState`).
    public init(servers count: Int, balance: Balancer.Method, maxActive: Int, maxIdle: Int?,
                maxFails: Int, failTimeout: UInt64, queueSize: Int, demandPeriod: UInt64 = PoolDefaults.demandPeriod) {
        let s = Server(pool: PoolState(maxActive: maxActive, maxIdle: maxIdle, demandPeriod: demandPeriod),
                       health: HealthState(maxFails: maxFails, failTimeout: failTimeout))
        servers = Array(repeating: s, count: count)
        balancer = Balancer(method: balance)
        queue = WaitQueue(capacity: queueSize, servers: count)
    }

    // MARK: A request wants a connection

    /// The fast path, with no queue to respect: an idle connection on the balancer's pick, leased.
    /// The owner checks it is still open and reports `leasedDead` if not.
    public mutating func leaseIdle(now: UInt64) -> (conn: Conn, server: Int)? {
        var b = balancer
        guard queue.isEmpty, let i = pick(excluding: nil, fresh: false, now: now, &b),
              !servers[i].pool.idle.isEmpty else { return nil }
        servers[i].pool.advance(now: now)
        guard case .reuse(let c) = servers[i].pool.lease() else { return nil }
        balancer = b
        return (c, i)
    }

    public enum RequestAction {
        /// Use this idle connection (leased; check it is open, else report `leasedDead`).
        case reuse(Conn, server: Int)
        /// A slot on this server is reserved: connect, then report `connectFailed` if it fails.
        /// `close` are the server's idle connections, dropped because the request asked for a fresh one.
        case connect(server: Int, close: [Conn])
        /// Nothing free: enqueue the request with `enqueue`.
        case wait
        /// Nothing free and the queue is full: 503.
        case refuse
    }

    /// A request wants a connection. `excluding` is the server a failover retry left (ignored when
    /// it is the only server); `fresh` asks for a new connection, as after a stale keep-alive race,
    /// and drops the idle ones of the server picked, since they are likely stale too.
    public mutating func request(excluding: Int?, fresh: Bool, now: UInt64) -> RequestAction {
        let excl = servers.count > 1 ? excluding : nil
        var b = balancer
        guard let i = pick(excluding: excl, fresh: fresh, now: now, &b) else {
            return queue.count < queue.capacity ? .wait : .refuse
        }
        balancer = b
        servers[i].pool.advance(now: now)
        let dropped = fresh ? servers[i].pool.takeAllIdle() : []
        switch servers[i].pool.lease() {
        case .reuse(let c): return .reuse(c, server: i)
        case .connect: return .connect(server: i, close: dropped)
        case .full: preconditionFailure("picked a server without capacity")
        }
    }

    /// Puts a request that got `.wait` in the queue; its ticket removes it on timeout.
    public mutating func enqueue(_ w: Waiter, excluding: Int?) -> WaitQueue<Waiter>.Ticket? {
        queue.push(w, excluding: servers.count > 1 ? excluding : nil)
    }

    /// A connection given by `reuse` (or a grant) turned out closed before use: the owner closes
    /// it and asks again; its slot is free.
    public mutating func leasedDead(server: Int) {
        servers[server].pool.connectFailed()
    }

    // MARK: Connects and releases

    /// What the queue gets when a slot frees up.
    public enum Grant {
        /// Resume this waiter with this connection (leased to it).
        case reuse(Waiter, Conn, server: Int)
        /// Resume this waiter with a reserved slot to connect in.
        case connect(Waiter, server: Int)
    }

    /// A connect (or TLS handshake) failed: the server's health counts it and its slot goes to a waiter.
    public mutating func connectFailed(server: Int, now: UInt64) -> Grant? {
        servers[server].pool.advance(now: now)
        servers[server].pool.connectFailed()
        servers[server].health.failed(now: now)
        return grantSlot(server: server, now: now)
    }

    public enum ReleaseAction {
        /// Keep the connection idle (the owner parks it until the idle timeout).
        case park
        /// Resume this waiter with the connection, which stays leased.
        case handOver(Waiter)
        /// Close the connection; its slot may go to a waiter.
        case close(Grant?)
    }

    /// A leased connection comes back. `reusable` is the reuse checklist's verdict; `succeeded`
    /// says the exchange completed, which is what passive health counts, whether or not the
    /// connection can be kept (a backend answering `Connection: close` every time is healthy).
    public mutating func released(_ c: Conn, server i: Int, reusable: Bool, succeeded: Bool, now: UInt64) -> ReleaseAction {
        if succeeded { servers[i].health.succeeded() }
        servers[i].pool.advance(now: now)
        let keep = reusable && !draining
        if keep && !queue.isEmpty {
            let rule = slotRule(server: i, now: now)
            if let w = queue.pop(for: i, accepts: { rule.accepts(excluding: $0) }) { return .handOver(w) }
        }
        switch servers[i].pool.release(c, reusable: keep) {
        case .park: return .park
        case .close: return .close(grantSlot(server: i, now: now))
        }
    }

    /// Idle connections of server `i` beyond what recent demand asks for, a few at a time, oldest
    /// first: the owner closes them. Asked after each release, so a pool a burst grew shrinks
    /// with the traffic that follows (a pool with no traffic at all empties by `idle_timeout`).
    public mutating func surplusIdle(server i: Int) -> [Conn] {
        servers[i].pool.takeSurplus(limit: PoolDefaults.trimPerRelease)
    }

    /// A server failed a request (reset, timeout, bad response). True when that took it out of rotation.
    @discardableResult
    public mutating func serverFailed(_ i: Int, now: UInt64) -> Bool {
        servers[i].health.failed(now: now)
    }

    /// A response head arrived from server `i`: it is alive.
    public mutating func answered(server i: Int, now: UInt64) {
        servers[i].health.answered(now: now)
    }

    /// A request's wait for a response head from server `i`, begun at `since`, ran out with nothing
    /// received. True when the server answered nothing since: it is hung and out of rotation now,
    /// and the owner sends the requests still waiting on it that may go elsewhere (idempotent,
    /// body whole, no failover yet) to another server now instead of letting each wait out its own
    /// `upstream_header`. The failure itself is counted by `serverFailed`, as any other.
    public mutating func headTimedOut(server i: Int, waitingSince since: UInt64, now: UInt64) -> Bool {
        servers[i].health.headTimedOut(waitingSince: since, now: now)
    }

    // MARK: Waiters and idle connections

    /// A waiter's queue timeout passed: it leaves the queue (the owner answers 503).
    public mutating func waiterTimedOut(_ ticket: WaitQueue<Waiter>.Ticket) {
        queue.remove(ticket)
    }

    /// An idle connection was closed by the server, or idled out: it leaves the pool.
    public mutating func idleClosed(_ c: Conn, server: Int) {
        servers[server].pool.removeIdle(c)
    }

    /// From now on nothing is kept idle. Returns the idle connections, to close.
    public mutating func drain() -> [(conn: Conn, server: Int)] {
        draining = true
        return takeAllIdle()
    }

    /// Takes every idle connection out of every pool.
    public mutating func takeAllIdle() -> [(conn: Conn, server: Int)] {
        var all: [(conn: Conn, server: Int)] = []
        for i in servers.indices {
            all += servers[i].pool.takeAllIdle().map { ($0, i) }
        }
        return all
    }

    // MARK: Rules

    /// The balancer's choice among servers in rotation that can serve now (with `fresh`: that can
    /// open a connection). When every server but the excluded one is down, all are tried anyway
    /// (as nginx does) rather than failing every request. `b` advances only with a choice.
    private func pick(excluding: Int?, fresh: Bool, now: UInt64, _ b: inout Balancer) -> Int? {
        let i = b.pick(count: servers.count, excluding: excluding,
                       available: { servers[$0].health.isAvailable(now: now) },
                       capacity: { canServe($0, fresh: fresh) }, load: { servers[$0].pool.active })
        if i != nil || availableCount(excluding: excluding, now: now) > 0 { return i }
        return b.pick(count: servers.count, excluding: excluding, available: { _ in true },
                      capacity: { canServe($0, fresh: fresh) }, load: { servers[$0].pool.active })
    }

    private func canServe(_ i: Int, fresh: Bool) -> Bool {
        fresh ? servers[i].pool.active < servers[i].pool.maxActive : servers[i].pool.hasCapacity
    }

    private func availableCount(excluding: Int?, now: UInt64) -> Int {
        var n = 0
        for i in servers.indices where i != excluding && servers[i].health.isAvailable(now: now) { n += 1 }
        return n
    }

    /// Which waiters may take a slot on one server: never one that excludes it; while the server is
    /// out of rotation, only one with no server in rotation left (as `pick` would choose it).
    private struct SlotRule {
        let server: Int
        let inRotation: Bool
        /// Servers in rotation, and one of them (the only one when the count is 1).
        let available: Int
        let someAvailable: Int

        func accepts(excluding e: Int?) -> Bool {
            if e == server { return false }
            return inRotation || available == 0 || (available == 1 && someAvailable == e)
        }
    }

    private func slotRule(server i: Int, now: UInt64) -> SlotRule {
        if servers[i].health.isAvailable(now: now) {
            return SlotRule(server: i, inRotation: true, available: 0, someAvailable: -1)
        }
        var n = 0, some = -1
        for j in servers.indices where servers[j].health.isAvailable(now: now) {
            n += 1
            some = j
        }
        return SlotRule(server: i, inRotation: false, available: n, someAvailable: some)
    }

    /// A slot freed on server `i`: the oldest waiter that may use it gets it.
    private mutating func grantSlot(server i: Int, now: UInt64) -> Grant? {
        guard !queue.isEmpty, servers[i].pool.hasCapacity else { return nil }
        let rule = slotRule(server: i, now: now)
        guard let w = queue.pop(for: i, accepts: { rule.accepts(excluding: $0) }) else { return nil }
        servers[i].pool.advance(now: now)
        switch servers[i].pool.lease() {
        case .reuse(let c): return .reuse(w, c, server: i)
        case .connect: return .connect(w, server: i)
        case .full: preconditionFailure("granting a slot on a full server")
        }
    }
}
