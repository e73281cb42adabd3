import Config
import Glibc
import Runtime
import Telemetry
import TLS

/// A connection to a backend server. While pooled it is parked: no task, no buffer; if the server
/// sends anything or closes, it is closed at once, since a response nobody asked for means the
/// connection can no longer be trusted.
final class UpstreamConnection: ParkedHandler, @unchecked Sendable {
    let socket: Socket
    unowned(unsafe) let server: UpstreamServer  // lives as long as the process
    var requests = 0
    /// One of the server's preallocated records (see `UpstreamServer.dense`).
    let isDense: Bool
    /// Set when the backend group speaks TLS to its servers.
    var tls: TLSStream?
    /// Its request may go to another server if this one turns out hung (set for each exchange).
    var mayFailOver = false
    /// When its request's response head began to be awaited.
    var headSince: UInt64 = 0
    /// How long connecting took (with the TLS handshake, for a TLS backend).
    var connectTime: UInt64 = 0
    /// Its place in `server.headWaits`; -1 when not there.
    var headWaitIndex = -1
    /// Its head wait was cut short because its server was found hung (it did not time out itself).
    var cutShort = false

    init(socket: Socket, server: UpstreamServer, dense: Bool = false) {
        self.socket = socket
        self.server = server
        self.isDense = dense
    }

    func parkedReadable(_ socket: Socket) { server.dropIdle(self) }
    func parkedExpired(_ socket: Socket) { server.dropIdle(self) }
}

/// One backend server: its address, pool and passive health.
final class UpstreamServer: @unchecked Sendable {
    let address: SocketAddress
    /// The host as configured: the name a TLS backend is asked for (SNI) and checked against.
    let host: String
    let label: String
    let index: Int
    /// "Host: host:port\r\n", for requests that came without a Host (HTTP/1.0).
    let hostLine: UnsafeRawBufferPointer
    var connectsTotal = 0
    var connectErrorsTotal = 0
    var failuresTotal = 0
    /// Requests sent whole to this server (retries included).
    var requestsTotal = 0
    /// Time from a request sent to its final response head arriving (set by the metrics).
    var responseTimes: LoopHistogram?
    /// Logged as taken out of rotation, not yet as back (so the success that brings it back is
    /// noticed with one load, not a look into the group's state on every release).
    var loggedDown = false
    unowned var group: UpstreamGroup!

    init(address: SocketAddress, index: Int, config: BackendGroup) {
        self.address = address
        host = index < config.servers.count ? config.servers[index].host : address.host
        self.index = index
        label = address.description
        let line = Array("Host: \(address.description)\r\n".utf8)
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: line.count, alignment: 1)
        storage.copyBytes(from: line)
        hostLine = UnsafeRawBufferPointer(storage)  // lives as long as the process
    }

    /// This server's part of the group's state (read by the metrics).
    var pool: PoolState<UpstreamConnection> { group.state.servers[index].pool }
    var health: HealthState { group.state.servers[index].health }

    /// Connections whose request awaits its response head and may go elsewhere if this server
    /// hangs. Swap-removed by index: O(1) per request.
    private(set) var headWaits: [UpstreamConnection] = []

    func addHeadWait(_ c: UpstreamConnection) {
        c.headWaitIndex = headWaits.count
        headWaits.append(c)
    }

    func removeHeadWait(_ c: UpstreamConnection) {
        let i = c.headWaitIndex
        guard i >= 0 else { return }
        let last = headWaits.removeLast()
        if i < headWaits.count {
            headWaits[i] = last
            last.headWaitIndex = i
        }
        c.headWaitIndex = -1
    }

    /// Empties `headWaits`, returning them.
    func takeHeadWaits() -> [UpstreamConnection] {
        defer { headWaits.removeAll(keepingCapacity: true) }
        for c in headWaits { c.headWaitIndex = -1 }
        return headWaits
    }

    /// Free preallocated records. Idle pooled connections move into these when they park, so
    /// that after a burst the connections kept idle sit together in memory rather than pinning
    /// pages all over the heap.
    private var dense: [UpstreamConnection] = []

    func preallocate(_ n: Int) {
        for _ in 0..<n { dense.append(UpstreamConnection(socket: Socket(), server: self, dense: true)) }
    }

    /// The record to keep `c` idle in: `c` itself, or a preallocated one its fd moved into.
    func densify(_ c: UpstreamConnection) -> UpstreamConnection {
        guard !c.isDense, let d = dense.popLast() else { return c }
        guard c.socket.transfer(to: d.socket) else {
            dense.append(d)
            return c
        }
        d.requests = c.requests
        if let t = c.tls {
            t.retarget(d.socket)
            d.tls = t
            c.tls = nil
        }
        return d
    }

    func close(_ c: UpstreamConnection) {
        if let t = c.tls {
            t.shutdown()
            c.tls = nil
        }
        c.socket.close()
        if c.isDense {
            c.requests = 0
            dense.append(c)
        }
    }

    func dropIdle(_ c: UpstreamConnection) {
        group.state.idleClosed(c, server: index)
        close(c)
    }
}

/// Why no upstream exchange could start.
enum AcquireFailure: Error {
    case queueFull
    case queueTimeout
    /// The request gave up its place in the queue (its client hung up).
    case cancelled
    case connect(IOError, UpstreamServer)
}

/// A request waiting for a connection: resumed with one, with a slot to connect in, or timed out.
final class Waiter: TimerNode {
    enum Grant {
        case reuse(UpstreamConnection)
        case connect(UpstreamServer)
        case timedOut
        case cancelled
    }
    var continuation: UnsafeContinuation<Grant, Never>?
    var ticket: WaitQueue<Waiter>.Ticket?
    unowned let group: UpstreamGroup

    init(group: UpstreamGroup) { self.group = group }

    func grant(_ g: Grant) {
        EventLoop.shared.timers.remove(self)
        let c = continuation
        continuation = nil
        c?.resume(returning: g)
    }

    override func timerFired() { leave(.timedOut) }

    /// Gives up the place in the queue before a grant (the client hung up).
    func cancel() {
        EventLoop.shared.timers.remove(self)
        leave(.cancelled)
    }

    private func leave(_ why: Grant) {
        guard let c = continuation else { return }
        if let t = ticket { group.state.waiterTimedOut(t) }
        continuation = nil
        c.resume(returning: why)
    }
}

/// A backend group: performs what its `GroupState` decides (sockets, timers, continuations).
final class UpstreamGroup: @unchecked Sendable {
    let config: BackendGroup
    let servers: [UpstreamServer]
    /// Pools, health, balancer and queue: every decision, as one value.
    var state: GroupState<UpstreamConnection, Waiter>
    let connectTimeout: UInt64
    /// Set when the group speaks TLS to its servers (`tls on;`).
    let tlsClient: TLSClientContext?
    let requestsByClass = CounterArray(count: 6)
    /// Where servers going down and coming back are told (the proxy's error log).
    var errorLog: ErrorLog?
    var onQueueWait: (UInt64) -> Void = { _ in }

    init(config: BackendGroup, addresses: [SocketAddress], connectTimeout: UInt64, tlsClient: TLSClientContext? = nil) {
        self.config = config
        self.tlsClient = tlsClient
        servers = addresses.enumerated().map { UpstreamServer(address: $1, index: $0, config: config) }
        state = GroupState(servers: addresses.count, balance: config.balance == .roundRobin ? .roundRobin : .leastConnections,
                           maxActive: config.maxConnections, maxIdle: config.maxIdle,
                           maxFails: config.maxFails, failTimeout: config.failTimeout, queueSize: config.queueSize)
        self.connectTimeout = connectTimeout
        for s in servers {
            s.group = self
            // With idle sized by demand, a first batch; bursts beyond it keep their own records.
            s.preallocate(min(config.maxIdle ?? 1024, config.maxConnections, 4096))
        }
    }

    deinit { requestsByClass.deallocate() }

    /// The requests waiting for a connection (read by the metrics).
    var queue: WaitQueue<Waiter> { state.queue }

    /// Once set, connections are no longer kept idle.
    var draining: Bool {
        get { state.draining }
        set { if newValue { closeAll(state.drain()) } }
    }

    struct Lease {
        let conn: UpstreamConnection
        let reused: Bool
    }

    /// The common case, without allocation or suspension: nobody queued and the balancer's pick has
    /// an idle pooled connection that is still open.
    func tryAcquireIdle(verify: Bool) -> Lease? {
        while let l = state.leaseIdle(now: EventLoop.shared.now) {
            if let lease = checked(l.conn, verify: verify) { return lease }
        }
        return nil
    }

    /// Gets a connection: an idle pooled one, a new one, or a place in the queue.
    /// `fresh` skips (and closes) pooled connections: used after a stale keep-alive race.
    @LoopActor
    /// `queued` is told the waiter when the request has to wait, so its owner can cancel it.
    func acquire(excluding: UpstreamServer?, fresh: Bool, verify: Bool = true, queued: (Waiter) -> Void = { _ in }) async throws(AcquireFailure) -> Lease {
        while true {
            let now = EventLoop.shared.now
            switch state.request(excluding: excluding?.index, fresh: fresh, now: now) {
            case .reuse(let c, _):
                if let lease = checked(c, verify: verify) { return lease }
            case .connect(let i, let stale):
                for c in stale { servers[i].close(c) }
                return try await connect(servers[i])
            case .refuse:
                throw .queueFull
            case .wait:
                let w = Waiter(group: self)
                guard let ticket = state.enqueue(w, excluding: excluding?.index) else { throw .queueFull }
                w.ticket = ticket
                queued(w)
                let grant = await withUnsafeContinuation { (c: UnsafeContinuation<Waiter.Grant, Never>) in
                    w.continuation = c
                    EventLoop.shared.timers.schedule(w, at: now + config.queueTimeout)
                }
                onQueueWait(EventLoop.shared.now - now)
                switch grant {
                case .reuse(let c):
                    if let lease = checked(c, verify: verify) { return lease }
                case .connect(let s):
                    return try await connect(s)
                case .timedOut:
                    throw .queueTimeout
                case .cancelled:
                    throw .cancelled
                }
            }
            // The connection we were given had been closed by the server: ask again.
        }
    }

    /// A leased pooled connection, if the server has not closed it meanwhile (else it is closed
    /// and its slot freed). A close that epoll reported is always seen. The kernel is asked (a
    /// `MSG_PEEK`, one syscall) when epoll said there was something to read since the last short
    /// read (bytes that came while the connection was neither parked nor read, which would
    /// otherwise pass for the next response), and when `verify` asks about a close since the loop
    /// last looked, which only a request that could not be sent again needs: any other one that
    /// meets that rare race is retried on a fresh connection, as nginx does without looking.
    private func checked(_ c: UpstreamConnection, verify: Bool) -> Lease? {
        c.socket.unpark()
        let pending = c.tls?.hasPendingBytes ?? false
        let open = (verify || c.socket.mayRead || pending) ? !pending && c.socket.isIdleAndOpen()
                                                           : !(c.socket.isClosed || c.socket.peerClosed)
        if open { return Lease(conn: c, reused: true) }
        state.leasedDead(server: c.server.index)
        c.server.close(c)
        return nil
    }

    @LoopActor
    private func connect(_ s: UpstreamServer) async throws(AcquireFailure) -> Lease {
        s.connectsTotal += 1
        do throws(IOError) {
            let started = EventLoop.shared.now
            let deadline = started + connectTimeout
            let sock = try await TCP.connect(to: s.address, until: deadline)
            let conn = UpstreamConnection(socket: sock, server: s)
            if let client = tlsClient {
                // The handshake is part of connecting: it has the connect timeout, and a failure
                // counts as a connect error (so a retry on another server may follow).
                guard let t = TLSStream(client: client, socket: sock, serverName: client.settings.serverName ?? s.host),
                      await t.handshake(until: deadline) else {
                    sock.close()
                    throw IOError.errno(EPROTO)
                }
                conn.tls = t
            }
            conn.connectTime = EventLoop.shared.now &- started
            return Lease(conn: conn, reused: false)
        } catch {
            s.connectErrorsTotal += 1
            s.failuresTotal += 1
            let wasUp = s.health.isAvailable(now: EventLoop.shared.now)
            perform(state.connectFailed(server: s.index, now: EventLoop.shared.now))
            noteDown(s, wasUp: wasUp, why: "\(config.maxFails) failures in a row (max_fails), the last: connect failed: \(ErrorLog.describe(error))")
            throw .connect(error, s)
        }
    }

    /// A server failed a request (connect error, reset, timeout): passive health counts it.
    func failed(_ s: UpstreamServer) {
        s.failuresTotal += 1
        let wasUp = s.health.isAvailable(now: EventLoop.shared.now)
        state.serverFailed(s.index, now: EventLoop.shared.now)
        noteDown(s, wasUp: wasUp, why: "\(config.maxFails) failures in a row (max_fails)")
    }

    /// Writes to the error log when `s`, available before, is out of rotation now.
    private func noteDown(_ s: UpstreamServer, wasUp: Bool, why: @autoclosure () -> String) {
        guard wasUp && !s.health.isAvailable(now: EventLoop.shared.now) else { return }
        s.loggedDown = true
        errorLog?.serverDown(s, why: why())
    }

    // MARK: Hung servers

    /// The request on `c` is sent: its response head is awaited from now.
    func awaitingHead(_ c: UpstreamConnection) {
        c.headSince = EventLoop.shared.now
        c.server.requestsTotal += 1
        c.cutShort = false
        if c.mayFailOver { c.server.addHeadWait(c) }
    }

    /// The first bytes of a response (an interim head, or part of the final one) came on `c`: its
    /// server is answering (every head arrives this way, so this is the one place that records
    /// it), so it is not hung, and the request can no longer go elsewhere (a head
    /// cut off mid-way is a bad response), so another request's head timeout must not wake it.
    func headBegan(_ c: UpstreamConnection) {
        c.server.removeHeadWait(c)
        state.answered(server: c.server.index, now: EventLoop.shared.now)
    }

    /// `c`'s head wait ran out with nothing received. When its server sent no head since the
    /// request went, the server is taken out of rotation now, and the other requests waiting on
    /// it that may go elsewhere are woken as if timed out, so they fail over now.
    func headTimedOut(_ c: UpstreamConnection) {
        let s = c.server
        s.removeHeadWait(c)
        let wasUp = s.health.isAvailable(now: EventLoop.shared.now)
        guard !c.cutShort, state.headTimedOut(server: s.index, waitingSince: c.headSince, now: EventLoop.shared.now) else { return }
        noteDown(s, wasUp: wasUp, why: "no response head within upstream_header, and none to any request since this one was sent (hung)")
        guard config.retry, servers.count > 1 else { return }
        for w in s.takeHeadWaits() {
            w.cutShort = true
            w.socket.interrupt()
        }
    }

    /// Gives a leased connection back: to a waiting request, to the idle pool, or closed.
    /// `succeeded`: the exchange completed (a response relayed whole), which passive health counts
    /// as a success even when the connection cannot be reused; a reusable one always did.
    func release(_ c: UpstreamConnection, reusable: Bool, succeeded: Bool = false) {
        let s = c.server
        s.removeHeadWait(c)
        let now = EventLoop.shared.now
        let keep = reusable && !state.draining
        if succeeded && s.loggedDown {
            s.loggedDown = false
            errorLog?.serverUp(s)
        }
        let record = keep && state.servers[s.index].pool.keepsRelease ? s.densify(c) : c
        switch state.released(record, server: s.index, reusable: reusable, succeeded: succeeded, now: now) {
        case .park:
            record.socket.park(record, until: now + config.idleTimeout)
        case .handOver(let w):
            w.grant(.reuse(record))
            return
        case .close(let g):
            s.close(record)
            perform(g)
        }
        for old in state.surplusIdle(server: s.index) { s.close(old) }
    }

    /// A leased connection leaves the pool for good, still open (it became a tunnel): its slot
    /// is freed for the next request as if it had closed. The tunnel closes it with `server.close`.
    func detach(_ c: UpstreamConnection) {
        let s = c.server
        s.removeHeadWait(c)
        c.socket.unpark()
        if case .close(let g) = state.released(c, server: s.index, reusable: false, succeeded: true, now: EventLoop.shared.now) {
            perform(g)
        }
    }

    /// Resumes the waiter a freed slot went to.
    private func perform(_ g: GroupState<UpstreamConnection, Waiter>.Grant?) {
        switch g {
        case .reuse(let w, let c, _):
            c.socket.unpark()  // now the waiter's: a close while it resumes must not recycle the record
            w.grant(.reuse(c))
        case .connect(let w, let i):
            w.grant(.connect(servers[i]))
        case nil:
            break
        }
    }

    /// Closes every idle pooled connection (drain).
    func closeIdle() { closeAll(state.takeAllIdle()) }

    private func closeAll(_ idle: [(conn: UpstreamConnection, server: Int)]) {
        for (c, i) in idle { servers[i].close(c) }
    }
}
