import Glibc
import HTTP1
import Runtime

/// One attempt to forward a request on one upstream connection, as named phases. Each phase
/// throws an `ExchangeFailure` that says who failed and how far the exchange got.
extension ClientSession {
    /// The phases in order. Each phase tries its I/O synchronously first and awaits only when it
    /// must wait: an async call costs a frame allocation even when nothing waits.
    @inline(__always) nonisolated(nonsending)
    func exchange(_ ws: Workspace, _ conn: UpstreamConnection, _ plan: RequestPlan) async throws(ExchangeFailure) -> Completed {
        if try !writeHead(ws, conn, plan) { try await finishHead(ws, conn) }
        if !plan.bodyDone { try await sendBody(ws, conn, plan) }
        try await readResponseHead(ws, conn, plan)
        // The response is coming: from here a client that leaves is seen when a write fails.
        socket.hangupWatcher = nil
        if ws.response.head.status == 101 { return try await switchProtocols(ws, plan) }
        return try await relayResponse(ws, conn, plan)
    }

    // MARK: Phase: send head

    /// The rewritten head and whatever body is already buffered, in one writev; true when the
    /// kernel took all of it (`finishHead` sends the rest).
    private func writeHead(_ ws: Workspace, _ conn: UpstreamConnection, _ plan: RequestPlan) throws(ExchangeFailure) -> Bool {
        let inb = inbound.buffer!
        let p = UnsafeRawPointer(inb.base + inb.readIndex)
        ws.iov.reset()
        let peer = peerBytes(ws), client = clientFacts(ws), iov = ws.iov, hostLine = conn.server.hostLine
        ws.request.lendHead { HeadRewriter.request(iov, p, $0, peer: peer, hostLine: hostLine, client: client) }
        ws.iov.add(p + plan.headEnd, plan.buffered)
        ws.requestSpool.addSpans(to: ws.iov)
        do throws(IOError) {
            return try conn.sendNow(ws.iov)
        } catch {
            throw upstreamFailure(.send(error), requestSent: ws.iov.written > 0)
        }
    }

    nonisolated(nonsending)
    private func finishHead(_ ws: Workspace, _ conn: UpstreamConnection) async throws(ExchangeFailure) {
        do throws(IOError) {
            try await conn.send(ws.iov, staging: ws.upstreamStaging, until: EventLoop.shared.now + ctx.config.timeouts.upstreamSend)
        } catch {
            throw upstreamFailure(.send(error), requestSent: ws.iov.written > 0)
        }
    }

    /// The client's address, copied into the workspace for X-Forwarded-For.
    func peerBytes(_ ws: Workspace) -> UnsafeRawBufferPointer {
        var len = 0
        var text = peer
        text.withUTF8 { u in
            len = min(u.count, ws.scratch.count)
            ws.scratch.copyMemory(from: UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(u)[0..<len]))
        }
        return UnsafeRawBufferPointer(rebasing: ws.scratch[0..<len])
    }

    /// What the proxy vouches for about the client. The subject header's name and line are copied
    /// into the workspace's staging buffer (name first, line at 4 KiB), free until the response.
    func clientFacts(_ ws: Workspace) -> HeadRewriter.ClientFacts {
        var facts = HeadRewriter.ClientFacts(tls: tls != nil)
        if ws.requestIDLength > 0 { facts.requestIDLine = UnsafeRawBufferPointer(rebasing: ws.requestIDLine[0..<ws.requestIDLength]) }
        guard let name = subjectHeaderName else { return facts }
        let stage = ws.tlsStaging
        stage.copyBytes(from: name)
        facts.subjectName = UnsafeRawBufferPointer(rebasing: stage[0..<name.count])
        if let line = clientSubjectLine {
            UnsafeMutableRawBufferPointer(rebasing: stage[4096...]).copyBytes(from: line)
            facts.subjectLine = UnsafeRawBufferPointer(rebasing: stage[4096..<(4096 + line.count)])
        }
        return facts
    }

    // MARK: Phase: send body

    /// The rest of a body larger than `request_buffer`, one buffer at a time: we read from the
    /// client only what the backend has taken, so the rest of a body of any size needs one buffer.
    /// The client's pace still counts against the minimum rate.
    nonisolated(nonsending)
    private func sendBody(_ ws: Workspace, _ conn: UpstreamConnection, _ plan: RequestPlan) async throws(ExchangeFailure) {
        let maxBody = ctx.config.limits.maxBodyBytes
        inbound.buffer!.readIndex += plan.headEnd + plan.buffered
        ws.requestSpool.release()  // its bytes went with the head (and `receiveBody` answered any 100-continue)
        var framer = plan.framer
        var rate = plan.bodyRate
        var total = UInt64(plan.buffered + plan.spooled)
        setPhase(.reading)
        while true {
            inbound.releaseIfEmpty()
            let b = inbound.held()
            if b.writableTail == 0 { b.compact() }
            let n = try await readClientBody(into: b.tail, &rate, sent: true)
            b.writeIndex += n
            let r = framer.scan(b.readableBytes)
            if let e = r.error { throw ExchangeFailure(.badBody(e), requestSent: true) }
            total += UInt64(r.consumed)
            if maxBody > 0 && total > maxBody { throw ExchangeFailure(.badBody(.bodyTooLarge), requestSent: true) }
            do throws(IOError) {
                try await conn.send(UnsafeRawBufferPointer(start: b.base + b.readIndex, count: r.consumed),
                                    until: EventLoop.shared.now + ctx.config.timeouts.upstreamSend)
            } catch {
                throw upstreamFailure(.send(error), requestSent: true)
            }
            b.readIndex += r.consumed
            if r.done { return }
        }
    }

    // MARK: Phase: read response head

    /// Reads the final response head into `ws.response`. 1xx interim responses are relayed to
    /// HTTP/1.1 clients (100 is ours to send, so dropped; an HTTP/1.0 client gets none, RFC 9110
    /// §15.2).
    @inline(__always) nonisolated(nonsending)
    private func readResponseHead(_ ws: Workspace, _ conn: UpstreamConnection, _ plan: RequestPlan) async throws(ExchangeFailure) {
        setPhase(.waitingUpstream)
        let ub = ws.upstream
        let deadline = EventLoop.shared.now + ctx.config.timeouts.upstreamHeader
        group.awaitingHead(conn)
        var sawByte = false
        while true {
            ws.response.reset()
            while try !ws.parsedResponseHead() { try await readMoreHead(conn, ub, deadline, &sawByte) }
            let status = ws.response.head.status
            if status >= 200 { break }
            if status == 101 {
                // Only an upgrade the client asked for (and we passed on) may be agreed to.
                if plan.wantsTunnel && agreedUpgrade(ws) { break }
                throw ExchangeFailure(.badResponse, requestSent: true)
            }
            let b = ub.buffer!
            if status != 100 && plan.versionMinor == 1 {
                // Rewritten like a final head: its hop-by-hop fields are the backend's hop only.
                ws.iov.reset()
                HeadRewriter.response(ws.iov, UnsafeRawPointer(b.base + b.readIndex), ws.response.head, close: false, keepAlive10: false, dechunk: false)
                do throws(IOError) {
                    if try !sendNow(ws.iov) { try await send(ws.iov, staging: ws.tlsStaging, until: EventLoop.shared.now + ctx.config.timeouts.clientSend) }
                } catch {
                    throw ExchangeFailure(.clientGone, requestSent: true)
                }
            }
            b.readIndex += ws.response.head.end
        }
        let headTime = EventLoop.shared.now &- conn.headSince
        conn.server.responseTimes?.record(Double(headTime) * 1e-9)
        if ctx.accessLog != nil { ws.access.header = headTime }  // its record is not read otherwise: not even touched
        // The request is committed: its bytes are done with, and so is the buffer unless a
        // pipelined request is in it (a slow reader holds no request buffer while it reads).
        if plan.bodyDone { inbound.buffer!.readIndex += plan.headEnd + plan.buffered }
        inbound.releaseIfEmpty()
    }

    /// Whether the 101 in `ws.response` names only protocols the request offered (see `UpgradeTokens`).
    private func agreedUpgrade(_ ws: Workspace) -> Bool {
        let req = inbound.buffer!, resp = ws.upstream.buffer!
        let offered = ws.request.lendHead { UpgradeTokens.of($0, UnsafeRawPointer(req.base + req.readIndex)) }
        let chosen = ws.response.lendHead { UpgradeTokens.of($0, UnsafeRawPointer(resp.base + resp.readIndex)) }
        return UpgradeTokens.agreed(offered: offered, chosen: chosen)
    }


    @inline(__always) nonisolated(nonsending)
    private func readMoreHead(_ conn: UpstreamConnection, _ ub: BufferSlot, _ deadline: UInt64, _ sawByte: inout Bool) async throws(ExchangeFailure) {
        if clientHungUp { throw ExchangeFailure(.clientGone, requestSent: true) }
        let n: Int
        do throws(IOError) {
            n = try await conn.fill(ub, until: deadline)
        } catch {
            if clientHungUp { throw ExchangeFailure(.clientGone, requestSent: true) }
            // A head cut off mid-way is a bad response; only a silent backend is a head timeout
            // (which an idempotent request may leave for another server).
            if error == .timedOut && !sawByte {
                group.headTimedOut(conn)  // a hung server leaves rotation, and its other waits fail over now
                throw ExchangeFailure(.headTimeout, requestSent: true)
            }
            if error == .timedOut { throw ExchangeFailure(.badResponse, requestSent: true) }
            throw ExchangeFailure(sawByte ? .badResponse : .closedBeforeHead(error), requestSent: true)
        }
        if n == 0 { throw ExchangeFailure(sawByte ? .badResponse : .closedBeforeHead(nil), requestSent: true) }
        if !sawByte { group.headBegan(conn) }  // the server is answering: not hung, and no failover now
        sawByte = true
    }

    /// A failure while talking to the backend, unless the client hanging up is why it was cut short.
    private func upstreamFailure(_ cause: ExchangeFailure.Cause, requestSent: Bool) -> ExchangeFailure {
        ExchangeFailure(clientHungUp ? .clientGone : cause, requestSent: requestSent)
    }
}

extension Workspace {
    /// Whether the upstream buffer holds a complete response head (parsed into `response`); a head
    /// that cannot be parsed is a bad response.
    func parsedResponseHead() throws(ExchangeFailure) -> Bool {
        guard let b = upstream.buffer, !b.isEmpty else { return false }
        switch response.parse(b.readableBytes) {
        case .complete: return true
        case .needMore: return false
        case .error: throw ExchangeFailure(.badResponse, requestSent: true)
        }
    }
}
