import Glibc
import Runtime
import TLS

/// Accepts client connections on one listening socket. Running out of file descriptors pauses
/// accepting briefly (counted) instead of spinning on the error or crashing, and so does reaching
/// `limits.max_connections`.
final class Listener: @unchecked Sendable {
    /// Unsent bytes a client socket may queue in the kernel (TCP_NOTSENT_LOWAT; bytes in flight
    /// are not counted, so a fast client far away still gets its whole window). Beyond it a slow
    /// reader's response waits in our bounded response queue, where the minimum rate sees its
    /// pace; in the kernel a reader with a tiny window costs about 2.4 times its bytes in skbs.
    static let unsentLimit = 64 * 1024

    let socket: Socket
    unowned let ctx: ProxyContext
    let group: UpstreamGroup
    let groupIndex: Int
    /// Set when this listener speaks TLS.
    let tls: TLSServerContext?
    /// Cleartext HTTP/2 with prior knowledge is accepted (`http2 on` without TLS).
    let priorKnowledge: Bool
    var stopped = false

    init(socket: Socket, ctx: ProxyContext, group: UpstreamGroup, groupIndex: Int, tls: TLSServerContext?, priorKnowledge: Bool = false) {
        self.tls = tls
        self.priorKnowledge = priorKnowledge
        self.socket = socket
        self.ctx = ctx
        self.group = group
        self.groupIndex = groupIndex
    }

    @LoopActor
    func run() async {
        let stats = ctx.stats
        // A pause is counted once, when it begins, however many looks it takes to end: one at
        // max_connections ends when a connection closes, one for want of descriptors when an
        // accept succeeds.
        var paused: PauseReason?
        func pause(_ reason: PauseReason) {
            if paused != reason {
                stats.acceptPausesTotal += 1
                ctx.errorLog.acceptPaused(reason == .connectionLimit
                    ? "\(stats.clientConnections) client connections, limits.max_connections is \(ctx.config.limits.maxConnections)"
                    : "out of file descriptors (process_max_fds \(ProcessStats.maxFDs()))")
            }
            paused = reason
        }
        while !stopped {
            if stats.clientConnections >= ctx.config.limits.maxConnections {
                pause(.connectionLimit)
                await sleep(until: EventLoop.shared.now + 10_000_000)
                continue
            }
            if paused == .connectionLimit { paused = nil }
            let accepted: TCP.Accepted
            do {
                accepted = try await TCP.accept(socket)
            } catch {
                if stopped { return }
                if case .errno(let e) = error, e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM {
                    pause(.descriptors)
                    await sleep(until: EventLoop.shared.now + 100_000_000)
                    continue
                }
                if error == .closed { return }
                continue
            }
            paused = nil
            stats.acceptedTotal += 1
            TCP.limitUnsent(accepted.fd, Self.unsentLimit)
            guard let session = ctx.makeSession(fd: accepted.fd, peer: accepted.peer?.host ?? "unknown", group: group, groupIndex: groupIndex, tls: tls) else { continue }
            session.priorKnowledge = priorKnowledge
            session.spawn()
        }
    }

    private enum PauseReason { case connectionLimit, descriptors }

    func stop() {
        stopped = true
        socket.close()
    }
}
