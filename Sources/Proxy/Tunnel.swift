import Glibc
import Runtime

/// An upgraded connection (WebSocket, or any protocol a backend agreed to with 101): bytes relayed
/// both ways as they come, each direction on its own (`TunnelPipe`), with backpressure (a side's
/// bytes are read only once the other side took the last ones).
///
/// No task runs a tunnel. Both sockets are parked with the tunnel as their handler, and every
/// readiness, either way on either side, runs `pump` on the loop: it moves what can move without
/// waiting and parks again. So an idle tunnel holds no task and no buffer, as an idle keep-alive
/// connection does not, and a busy one needs no suspension.
final class Tunnel: ParkedHandler, @unchecked Sendable {
    unowned(unsafe) let ctx: ProxyContext
    let client: ClientSession
    let upstream: UpstreamConnection
    /// Backend-to-client bytes; client-to-backend ones use the session's inbound slot.
    let down: BufferSlot
    private var toBackend: TunnelPipe
    private var toClient: TunnelPipe
    private var lastActivity: UInt64
    /// Since when a side has not taken bytes held for it (0: it has taken them all): a side that
    /// stops reading is given `client_send` (or `upstream_send`) as a request's would be, not the
    /// tunnel's idle hour.
    private var clientBlockedAt: UInt64 = 0
    private var backendBlockedAt: UInt64 = 0
    private var ended = false
    /// A pump that stopped for fairness is to run again soon.
    private var resumeQueued = false

    /// Takes over both connections; bytes already read past the heads (the client's first frames,
    /// the backend's) are held, and go first.
    init(ctx: ProxyContext, client: ClientSession, upstream: UpstreamConnection, backendBytes: IOBuffer?) {
        self.ctx = ctx
        self.client = client
        self.upstream = upstream
        down = BufferSlot(pool: ctx.upstreamBuffers)
        down.buffer = backendBytes
        toBackend = TunnelPipe(held: client.inbound.buffer?.readable ?? 0)
        toClient = TunnelPipe(held: backendBytes?.readable ?? 0)
        lastActivity = EventLoop.shared.now
    }

    func start() {
        upstream.socket.setDeadline(0)  // the client's socket keeps the one idle deadline
        ctx.stats.tunnelsOpen += 1
        ctx.stats.tunnelsTotal += 1
        client.setPhase(.tunnel)
        pump()
    }

    // MARK: Readiness

    func parkedReadable(_ socket: Socket) { pump() }

    /// Room to write matters only to a direction holding bytes (epoll reports it with most reads).
    func parkedWritable(_ socket: Socket) {
        if toBackend.held > 0 || toClient.held > 0 { pump() }
    }

    /// The client socket carries the one deadline (set at each park): the idle one, or a blocked
    /// side's write deadline if sooner.
    func parkedExpired(_ socket: Socket) {
        let now = EventLoop.shared.now
        let t = ctx.config.timeouts
        if clientBlockedAt != 0 && now >= clientBlockedAt + t.clientSend {
            ctx.stats.timedOut(.clientSend)
            end()
        } else if backendBlockedAt != 0 && now >= backendBlockedAt + t.upstreamSend {
            ctx.stats.timedOut(.upstreamSend)
            end()
        } else if now >= lastActivity + t.tunnel {
            ctx.stats.timedOut(.tunnel)
            end()
        } else {
            client.socket.setDeadline(deadline)
        }
    }

    private var deadline: UInt64 {
        let t = ctx.config.timeouts
        var d = lastActivity + t.tunnel
        if clientBlockedAt != 0 { d = min(d, clientBlockedAt + t.clientSend) }
        if backendBlockedAt != 0 { d = min(d, backendBlockedAt + t.upstreamSend) }
        return d
    }

    // MARK: Moving bytes

    /// Moves what both directions can move now, then parks; ends the tunnel when both directions
    /// are done or either side fails. At most `fairShare` bytes a turn: a tunnel that always has
    /// bytes must not hold the loop, so it runs again after the others' turn.
    func pump() {
        guard !ended else { return }
        // Half the turn's share each way: a saturated upload cannot starve the download.
        var upBudget = ClientSession.fairShare / 2, downBudget = ClientSession.fairShare / 2
        var moved = false
        do throws(IOError) {
            while true {
                let a = try step(&toBackend, from: client, to: upstream, slot: client.inbound, budget: &upBudget, blocked: &backendBlockedAt)
                let b = try step(&toClient, from: upstream, to: client, slot: down, budget: &downBudget, blocked: &clientBlockedAt)
                moved = moved || a || b
                if toBackend.isDone && toClient.isDone { return end() }
                if !(a || b) { break }
                if upBudget <= 0 || downBudget <= 0 {
                    queueResume()
                    break
                }
            }
        } catch {
            return end()
        }
        if moved { lastActivity = EventLoop.shared.now }
        park()
    }

    /// Advances one direction as far as it goes without waiting; true when anything moved.
    private func step<S: StreamEnd, D: StreamEnd>(_ pipe: inout TunnelPipe, from src: S, to dst: D, slot: BufferSlot, budget: inout Int,
                                                  blocked: inout UInt64) throws(IOError) -> Bool {
        var progress = false
        while true {
            switch pipe.next(sourceReadable: src.mayReceive) {
            case .write:
                let b = slot.buffer!
                let n = try dst.sendNow(b.readableBytes)
                if n == 0 {
                    if blocked == 0 { blocked = EventLoop.shared.now }
                    return progress
                }
                blocked = 0
                b.readIndex += n
                pipe.wrote(n)
                countMoved(n, toClient: D.isClient)
                budget -= n
                progress = true
                slot.releaseIfEmpty()
            case .read:
                if budget <= 0 { return progress }
                let b = slot.held()
                b.clear()
                guard let n = try src.receiveNow(into: b.tail) else {
                    slot.releaseIfEmpty()
                    return progress
                }
                b.writeIndex += n
                pipe.read(n)
                slot.releaseIfEmpty()
                progress = true
            case .shutDestination:
                dst.shutdownWrite()
                pipe.shut()
                progress = true
            case .wait, .done:
                return progress
            }
        }
    }

    private func countMoved(_ n: Int, toClient: Bool) {
        if toClient { ctx.stats.tunnelBytesDown &+= n } else { ctx.stats.tunnelBytesUp &+= n }
    }

    /// Both sockets wait for the next readiness, with the idle deadline on the client's.
    private func park() {
        client.socket.parked = self
        upstream.socket.parked = self
        client.socket.setDeadline(deadline)  // later: no timer work (see `Timers`)
    }

    private func queueResume() {
        guard !resumeQueued else { return }
        resumeQueued = true
        spawnOnLoop { [self] in
            resumeQueued = false
            pump()
        }
    }

    /// Closes both sides: both directions finished, one side failed, or the tunnel sat idle.
    func end() {
        guard !ended else { return }
        ended = true
        ctx.stats.tunnelsOpen -= 1
        down.release()
        upstream.socket.unpark()
        upstream.server.close(upstream)
        client.close()
    }
}
