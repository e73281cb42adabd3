import Config
import Glibc
import Runtime
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
    var pool: PoolState<UpstreamConnection>
    var health: HealthState
    var connectsTotal = 0
    var connectErrorsTotal = 0
    var failuresTotal = 0
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
        pool = PoolState(maxActive: config.maxConnections, maxIdle: config.maxIdle)
        health = HealthState(maxFails: config.maxFails, failTimeout: config.failTimeout)
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
        pool.removeIdle(c)
        close(c)
    }
}

/// Why no upstream exchange could start.
enum AcquireFailure: Error {
    case queueFull
    case queueTimeout
    case connect(IOError, UpstreamServer)
}

/// A request waiting for a connection: resumed with one, with a slot to connect in, or timed out.
final class Waiter: TimerNode {
    enum Grant {
        case reuse(UpstreamConnection)
        case connect(UpstreamServer)
        case timedOut
    }
    var continuation: UnsafeContinuation<Grant, Never>?
    unowned let group: UpstreamGroup

    init(group: UpstreamGroup) { self.group = group }

    func grant(_ g: Grant) {
        EventLoop.shared.timers.remove(self)
        let c = continuation
        continuation = nil
        c?.resume(returning: g)
    }

    override func timerFired() {
        group.queue.remove(self)
        let c = continuation
        continuation = nil
        c?.resume(returning: .timedOut)
    }
}

/// A backend group: servers, balancing, the queue of waiting requests and the pool rules.
final class UpstreamGroup: @unchecked Sendable {
    let config: BackendGroup
    let servers: [UpstreamServer]
    var balancer: Balancer
    var queue: WaitQueue<Waiter>
    let connectTimeout: UInt64
    /// Set when the group speaks TLS to its servers (`tls on;`).
    let tlsClient: TLSClientContext?
    var draining = false
    var requestsByClass = [Int](repeating: 0, count: 6)
    var onQueueWait: (UInt64) -> Void = { _ in }

    init(config: BackendGroup, addresses: [SocketAddress], connectTimeout: UInt64, tlsClient: TLSClientContext? = nil) {
        self.config = config
        self.tlsClient = tlsClient
        servers = addresses.enumerated().map { UpstreamServer(address: $1, index: $0, config: config) }
        balancer = Balancer(method: config.balance == .roundRobin ? .roundRobin : .leastConnections)
        queue = WaitQueue(capacity: config.queueSize)
        self.connectTimeout = connectTimeout
        for s in servers {
            s.group = self
            s.preallocate(min(config.maxIdle, 4096))
        }
    }

    struct Lease {
        let conn: UpstreamConnection
        let reused: Bool
    }

    /// The common case without a suspension point: the balancer's pick has an idle pooled connection.
    func tryAcquireIdle() -> Lease? {
        guard queue.isEmpty else { return nil }
        let now = EventLoop.shared.now
        var probe = balancer
        guard let i = probe.pick(count: servers.count, excluding: nil,
                                 available: { self.servers[$0].health.isAvailable(now: now) },
                                 capacity: { self.servers[$0].pool.hasCapacity },
                                 load: { self.servers[$0].pool.active }),
              !servers[i].pool.idle.isEmpty else { return nil }
        balancer = probe
        guard case .reuse(let c) = servers[i].pool.lease() else { return nil }
        c.socket.unpark()
        return Lease(conn: c, reused: true)
    }

    /// Gets a connection: an idle pooled one, a new one, or a place in the queue.
    /// `fresh` skips (and closes) pooled connections: used after a stale keep-alive race.
    @LoopActor
    func acquire(excluding: UpstreamServer?, fresh: Bool) async throws(AcquireFailure) -> Lease {
        let now = EventLoop.shared.now
        let count = servers.count
        let excl = count > 1 ? excluding?.index : nil
        var pick = balancer.pick(count: count, excluding: excl,
                                 available: { self.servers[$0].health.isAvailable(now: now) },
                                 capacity: { self.servers[$0].pool.hasCapacity },
                                 load: { self.servers[$0].pool.active })
        if pick == nil && !servers.contains(where: { $0.health.isAvailable(now: now) && $0.index != excl }) {
            // Every server is marked down: try them anyway rather than fail everything (as nginx does).
            pick = balancer.pick(count: count, excluding: excl, available: { _ in true },
                                 capacity: { self.servers[$0].pool.hasCapacity }, load: { self.servers[$0].pool.active })
        }
        if let i = pick {
            let s = servers[i]
            if fresh {
                for c in s.pool.takeAllIdle() { s.close(c) }
            }
            switch s.pool.lease() {
            case .reuse(let c):
                c.socket.unpark()
                return Lease(conn: c, reused: true)
            case .connect:
                return try await connect(s)
            case .full:
                break
            }
        }
        let w = Waiter(group: self)
        guard queue.push(w) else { throw .queueFull }
        let enqueued = now
        let grant = await withUnsafeContinuation { (c: UnsafeContinuation<Waiter.Grant, Never>) in
            w.continuation = c
            EventLoop.shared.timers.schedule(w, at: now + config.queueTimeout)
        }
        onQueueWait(EventLoop.shared.now - enqueued)
        switch grant {
        case .reuse(let c):
            c.socket.unpark()
            return Lease(conn: c, reused: true)
        case .connect(let s):
            return try await connect(s)
        case .timedOut:
            throw .queueTimeout
        }
    }

    @LoopActor
    private func connect(_ s: UpstreamServer) async throws(AcquireFailure) -> Lease {
        s.connectsTotal += 1
        do throws(IOError) {
            let deadline = EventLoop.shared.now + connectTimeout
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
            return Lease(conn: conn, reused: false)
        } catch {
            s.connectErrorsTotal += 1
            s.pool.connectFailed()
            failed(s)
            serveQueue(s)
            throw .connect(error, s)
        }
    }

    /// A server failed a request (connect error, reset, timeout): passive health counts it.
    func failed(_ s: UpstreamServer) {
        s.failuresTotal += 1
        s.health.failed(now: EventLoop.shared.now)
    }

    /// Gives a leased connection back: to a waiting request, to the idle pool, or closed.
    func release(_ c: UpstreamConnection, reusable: Bool) {
        let s = c.server
        if reusable && !draining {
            s.health.succeeded()
            if let w = queue.pop() {
                w.grant(.reuse(c))
                return
            }
        }
        let keep = reusable && !draining
        let record = keep && s.pool.idle.count < s.pool.maxIdle ? s.densify(c) : c
        switch s.pool.release(record, reusable: keep) {
        case .park:
            record.socket.park(record, until: EventLoop.shared.now + config.idleTimeout)
        case .close:
            s.close(record)
            serveQueue(s)
        }
    }

    /// A slot freed up on `s`: let the oldest waiter have it.
    private func serveQueue(_ s: UpstreamServer) {
        while !queue.isEmpty && s.pool.hasCapacity {
            guard let w = queue.pop() else { return }
            switch s.pool.lease() {
            case .reuse(let c): w.grant(.reuse(c))
            case .connect: w.grant(.connect(s))
            case .full: return
            }
        }
    }

    /// Closes every idle pooled connection (drain).
    func closeIdle() {
        for s in servers {
            for c in s.pool.takeAllIdle() { s.close(c) }
        }
    }
}
