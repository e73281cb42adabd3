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
        if try !sendNowToClient(ws.iov) { try await sendToClient(ws.iov, ws) }
        b.readIndex += ws.response.head.end
        return Completed(clientKeepAlive: false, upstreamReusable: false, status: 101, switched: true)
    }

    /// Hands both connections to a tunnel, which starts once this request's task has let go of
    /// the session (see `run`). The upstream connection leaves its pool, freeing the slot.
    func becomeTunnel(_ ws: Workspace, _ conn: UpstreamConnection) {
        group.detach(conn)
        ws.upstream.releaseIfEmpty()
        tunnel = Tunnel(ctx: ctx, client: self, upstream: conn, backendBytes: ws.upstream.buffer)
        ws.upstream.buffer = nil  // the tunnel's now
    }
}

/// The protocols of `Upgrade` fields, as a backend's 101 must name them: only ones the client
/// offered (RFC 9110 §7.8), never `h2c`. A backend that can be made to answer 101 to anything
/// (a status reflected from the request) must not be able to open a tunnel nobody asked for.
enum UpgradeTokens {
    /// The comma-separated tokens of every `Upgrade` field of `head` (whose bytes are at `p`).
    static func of(_ head: borrowing MessageHead, _ p: UnsafeRawPointer) -> [ArraySlice<UInt8>] {
        var out: [ArraySlice<UInt8>] = []
        for f in head.headers where f.kind == .upgrade {
            let value = Array(UnsafeRawBufferPointer(start: p + f.value.start, count: f.value.count))
            for part in value.split(separator: UInt8(ascii: ",")) {
                var t = part
                while let c = t.first, c == 0x20 || c == 0x09 { t = t.dropFirst() }
                while let c = t.last, c == 0x20 || c == 0x09 { t = t.dropLast() }
                if !t.isEmpty { out.append(t) }
            }
        }
        return out
    }

    /// Whether the backend's choice is among the client's offer, and is something.
    static func agreed(offered: [ArraySlice<UInt8>], chosen: [ArraySlice<UInt8>]) -> Bool {
        guard !chosen.isEmpty else { return false }
        return chosen.allSatisfy { c in
            !equal(c.prefix(3), "h2c".utf8) && offered.contains { equal($0, c) }
        }
    }

    private static func equal<A: Collection<UInt8>, B: Collection<UInt8>>(_ a: A, _ b: B) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { x, y in x | 0x20 == y | 0x20 }
    }
}
