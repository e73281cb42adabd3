import Runtime

/// Where a client session meets the access log: a record begun as each request's head is parsed,
/// and one line as it ends, for every request, forwarded or answered by the proxy itself.
extension ClientSession {
    /// The request in `ws` begins: its request line is copied from the head's bytes at `p` into
    /// its record, which starts over. (Nothing when the access log is off.)
    func beginAccess(_ ws: Workspace, head p: UnsafeRawPointer, versionMinor: Int) {
        guard ctx.accessLog != nil else { return }
        let method = ws.request.head.method, target = ws.request.head.target
        ws.access.begin(method: UnsafeRawBufferPointer(start: p + method.start, count: method.count),
                        target: UnsafeRawBufferPointer(start: p + target.start, count: target.count),
                        versionMinor: versionMinor)
    }

    /// The line of the request that ends now with `status`, begun at `started`; `ws` nil for one
    /// refused before its head was whole (its request line is then `-`).
    func logAccess(_ ws: Workspace?, status: Int, started: UInt64) {
        defer { sentBytes = 0 }
        logAccess(ws, status: status, started: started, bytesSent: sentBytes)
    }

    /// The same, with the bytes sent for it given (an HTTP/2 stream's are its own, not the
    /// connection's).
    func logAccess(_ ws: Workspace?, status: Int, started: UInt64, bytesSent: Int) {
        guard let log = ctx.accessLog else { return }
        var e = AccessEntry(client: peer)
        e.status = status
        e.bytesSent = bytesSent
        e.duration = EventLoop.shared.now &- started
        e.tls = tls?.version
        if let ws {
            ws.access.fill(&e)
            if ws.requestIDLength > 0 {
                e.requestID = UnsafeRawBufferPointer(rebasing: ws.requestIDLine[RequestID.prefix.count..<(ws.requestIDLength - 2)])
            }
        }
        log.write(e)
    }
}
