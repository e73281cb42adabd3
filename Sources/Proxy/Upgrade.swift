import HTTP1
import Runtime

/// The end of an HTTP exchange that becomes a tunnel: the backend agreed to the client's
/// `Upgrade` with 101, the 101 goes to the client, and both connections leave HTTP for good.
extension ClientSession {
    /// Sends the 101 head (its Upgrade field kept, with `Connection: upgrade`); the bytes after it
    /// stay in the upstream buffer for the tunnel.
    nonisolated(nonsending)
    func switchProtocols(_ ws: Workspace, _ plan: RequestPlan) async throws(ExchangeFailure) -> Completed {
        let b = ws.upstream.buffer!
        ws.iov.reset()
        HeadRewriter.response(ws.iov, UnsafeRawPointer(b.base + b.readIndex), ws.response.head, close: false, keepAlive10: false, dechunk: false, switching: true)
        setPhase(.writing)
        do throws(IOError) {
            if try !sendNow(ws.iov) { try await send(ws.iov, staging: ws.tlsStaging, until: EventLoop.shared.now + ctx.config.timeouts.clientSend) }
        } catch {
            throw ExchangeFailure(error == .timedOut ? .clientTimeout(.clientSend) : .clientGone, requestSent: true, responseStarted: true)
        }
        b.readIndex += ws.response.head.end
        return Completed(clientKeepAlive: false, upstreamReusable: false, status: 101, switched: true)
    }

    /// Hands both connections to a tunnel, which starts once this request's task has let go of
    /// the session (see `run`). The upstream connection leaves its pool, freeing the slot.
    func becomeTunnel(_ ws: Workspace, _ conn: UpstreamConnection) {
        group.detach(conn)
        let backendBytes = ws.upstream.buffer
        ws.upstream.buffer = nil
        if let b = backendBytes, b.isEmpty {
            ws.upstream.pool.give(b)
            tunnel = Tunnel(ctx: ctx, client: self, upstream: conn, backendBytes: nil)
        } else {
            tunnel = Tunnel(ctx: ctx, client: self, upstream: conn, backendBytes: backendBytes)
        }
    }
}
