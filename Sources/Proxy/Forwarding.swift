import Config
import HTTP1
import Runtime

/// How one attempt to forward a request ended.
enum ExchangeResult {
    /// The response was relayed whole.
    case completed(clientKeepAlive: Bool, upstreamReusable: Bool, status: Int)
    /// The backend failed before any response byte: a 502/504 or a retry may follow.
    case failedEarly(IOError, requestSent: Bool)
    /// The backend answered with something that is not HTTP/1.1.
    case badResponse
    /// The exchange broke after the response started, or the client went away: close both.
    case aborted(status: Int)
}

extension ClientSession {
    /// Forwards the parsed request and relays the response. Returns whether the client connection
    /// may stay open.
    @LoopActor
    func proxy(_ ws: Workspace) async -> Bool {
        let stats = ctx.stats
        stats.requestsInFlight += 1
        defer { stats.requestsInFlight -= 1 }
        let started = EventLoop.shared.now
        let head = ws.request.head
        let inb = inbound.buffer!
        let afterHead = inb.readIndex + head.end

        if ctx.config.limits.maxBodyBytes > 0, let n = head.contentLength, n > ctx.config.limits.maxBodyBytes {
            return await fail(413, close: true, started: started)
        }
        // How much of the body is already here; a body that is all here can be sent again.
        var framer = BodyFramer(head.requestFraming)
        let pre = framer.scan(UnsafeRawBufferPointer(start: inb.base + afterHead, count: inb.writeIndex - afterHead))
        if pre.error != nil { return await fail(400, close: true, started: started) }
        let replayable = pre.done
        requestEnd = afterHead + pre.consumed

        var excluded: UpstreamServer?
        var retried = false
        var staleRetried = false
        var fresh = false
        while true {
            setPhase(.waitingUpstream)
            let lease: UpstreamGroup.Lease
            do {
                if !fresh, excluded == nil, let idle = group.tryAcquireIdle() {
                    lease = idle
                } else {
                    lease = try await group.acquire(excluding: excluded, fresh: fresh)
                }
            } catch {
                switch error {
                case .queueFull:
                    return await fail(503, close: !replayable, started: started, retryAfter: 1)
                case .queueTimeout:
                    stats.timedOut(.queue)
                    return await fail(503, close: !replayable, started: started, retryAfter: 1)
                case .connect(let e, let server):
                    if !retried && group.config.retry && group.servers.count > 1 {
                        retried = true
                        excluded = server
                        stats.retriesTotal += 1
                        continue
                    }
                    if e == .timedOut { stats.timedOut(.upstreamConnect) }
                    return await fail(e == .timedOut ? 504 : 502, close: !replayable, started: started)
                }
            }
            let conn = lease.conn
            let result = await exchange(ws, conn, head: head, framer: framer, buffered: pre.consumed, bodyDone: pre.done)
            switch result {
            case .completed(let keep, let reusable, let status):
                conn.requests += 1
                group.release(conn, reusable: reusable)
                finish(status, started)
                return keep
            case .failedEarly(let e, let sent):
                group.release(conn, reusable: false)
                let safe = replayable && (head.methodKind.isIdempotent || !sent)
                if lease.reused && safe && !staleRetried && e != .timedOut {
                    // The stale keep-alive race: the server closed a pooled connection as we
                    // reused it. Not the server's fault and not the client's business.
                    staleRetried = true
                    fresh = true
                    stats.staleRetriesTotal += 1
                    continue
                }
                group.failed(conn.server)
                if e == .timedOut {
                    stats.timedOut(.upstreamHeader)
                    return await fail(504, close: !replayable, started: started)
                }
                if !retried && safe && group.config.retry && group.servers.count > 1 {
                    retried = true
                    excluded = conn.server
                    stats.retriesTotal += 1
                    continue
                }
                return await fail(502, close: true, started: started)
            case .badResponse:
                group.release(conn, reusable: false)
                group.failed(conn.server)
                return await fail(502, close: true, started: started)
            case .aborted(let status):
                group.release(conn, reusable: false)
                finish(status, started)
                return false
            }
        }
    }

    private func finish(_ status: Int, _ started: UInt64) {
        let cls = min(max(status / 100, 0), 5)
        group.requestsByClass[cls] += 1
        ctx.onRequestDone(groupIndex, status, EventLoop.shared.now - started)
    }

    /// Answers with the proxy's own error. The request's unread body makes the connection unusable.
    @LoopActor
    private func fail(_ status: Int, close: Bool, started: UInt64, retryAfter: Int? = nil) async -> Bool {
        if let b = inbound.buffer, !close {
            // The request (all of it is buffered) is done with; pipelined bytes after it stay.
            b.readIndex = min(b.writeIndex, requestEnd)
        }
        await respond(Responses.error(status, close: close, retryAfter: retryAfter))
        finish(status, started)
        return !close
    }

    /// One attempt: send the request (streaming its body), read the response head, relay the response.
    @LoopActor
    private func exchange(_ ws: Workspace, _ conn: UpstreamConnection, head: MessageHead, framer: BodyFramer,
                          buffered: Int, bodyDone: Bool) async -> ExchangeResult {
        let t = ctx.config.timeouts
        let inb = inbound.buffer!
        let base = inb.readIndex
        let p = UnsafeRawPointer(inb.base + base)

        // 1. The head and whatever body is already buffered, in one writev.
        var peerLen = 0
        var peerText = peer
        peerText.withUTF8 { u in
            peerLen = min(u.count, ws.scratch.count)
            ws.scratch.copyMemory(from: UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(u)[0..<peerLen]))
        }
        ws.iov.reset()
        var facts = HeadRewriter.ClientFacts(tls: tls != nil)
        if let c = tls?.context, c.forwardsClientSubject {
            // The header's name and the subject line are copied into the workspace's staging
            // buffer (name first, line at 4 KiB), which is free until the response is written.
            let stage = ws.tlsStaging
            let name = c.clientSubjectHeaderLowercased
            stage.copyBytes(from: name)
            facts.subjectName = UnsafeRawBufferPointer(rebasing: stage[0..<name.count])
            if let line = clientSubjectLine {
                UnsafeMutableRawBufferPointer(rebasing: stage[4096...]).copyBytes(from: line)
                facts.subjectLine = UnsafeRawBufferPointer(rebasing: stage[4096..<(4096 + line.count)])
            }
        }
        HeadRewriter.request(ws.iov, p, head, peer: UnsafeRawBufferPointer(rebasing: ws.scratch[0..<peerLen]),
                             hostLine: conn.server.hostLine, client: facts)
        ws.iov.add(p + head.end, buffered)
        do {
            if try !conn.sendNow(ws.iov) { try await conn.send(ws.iov, staging: ws.upstreamStaging, until: EventLoop.shared.now + t.upstreamSend) }
        } catch {
            return .failedEarly(error, requestSent: true)
        }

        // 2. The rest of the body, one buffer at a time: we read from the client only what the
        //    backend has taken, so a body of any size needs one buffer.
        if !bodyDone {
            inb.readIndex = base + head.end + buffered
            if head.expectContinue {
                do {
                    try await send(UnsafeRawBufferPointer(start: Responses.continue100.utf8Start, count: Responses.continue100.utf8CodeUnitCount),
                                           until: EventLoop.shared.now + t.clientSend)
                } catch {
                    return .aborted(status: 499)
                }
            }
            var f = framer
            var total = UInt64(buffered)
            setPhase(.reading)
            while true {
                inbound.releaseIfEmpty()
                let n: Int
                do {
                    n = try await fill(inbound, until: EventLoop.shared.now + t.clientBody)
                } catch {
                    if error == .timedOut { ctx.stats.timedOut(.clientBody) }
                    return .aborted(status: 408)
                }
                if n == 0 { return .aborted(status: 499) }
                let b = inbound.buffer!
                let r = f.scan(b.readableBytes)
                if r.error != nil { return .aborted(status: 400) }
                total += UInt64(r.consumed)
                if ctx.config.limits.maxBodyBytes > 0 && total > ctx.config.limits.maxBodyBytes { return .aborted(status: 413) }
                do {
                    try await conn.send(UnsafeRawBufferPointer(start: b.base + b.readIndex, count: r.consumed), until: EventLoop.shared.now + t.upstreamSend)
                } catch {
                    if error == .timedOut { ctx.stats.timedOut(.upstreamSend) }
                    return .aborted(status: 502)
                }
                b.readIndex += r.consumed
                if r.done { break }
            }
        }

        // 3. The response head. 1xx interim responses are relayed (100 is ours to send, so dropped).
        setPhase(.waitingUpstream)
        let ub = ws.upstream
        let headDeadline = EventLoop.shared.now + t.upstreamHeader
        var sawByte = false
        while true {
            ws.response.reset()
            var complete = false
            while !complete {
                if let b = ub.buffer, !b.isEmpty {
                    switch ws.response.parse(b.readableBytes) {
                    case .complete: complete = true; continue
                    case .error: return .badResponse
                    case .needMore: break
                    }
                }
                do {
                    let n = try await conn.fill(ub, until: headDeadline)
                    if n == 0 { return sawByte ? .badResponse : .failedEarly(.closed, requestSent: true) }
                    sawByte = true
                } catch {
                    return sawByte ? (error == .timedOut ? .failedEarly(.timedOut, requestSent: true) : .badResponse) : .failedEarly(error, requestSent: true)
                }
            }
            let status = ws.response.head.status
            if status >= 200 { break }
            if status == 101 { return .badResponse }  // we never ask for an upgrade
            let b = ub.buffer!
            if status != 100 {
                do {
                    try await send(UnsafeRawBufferPointer(start: b.base + b.readIndex, count: ws.response.head.end), until: EventLoop.shared.now + t.clientSend)
                } catch {
                    return .aborted(status: 499)
                }
            }
            b.readIndex += ws.response.head.end
        }
        // The request is committed: its bytes are done with.
        if bodyDone { inb.readIndex = base + head.end + buffered }

        // 4. The response head to the client, with the first body bytes in the same writev.
        let rh = ws.response.head
        let framing = rh.responseFraming(requestMethod: head.methodKind)
        let dechunk = framing == .chunked && head.versionMinor == 0
        let clientKeep = head.keepAlive && framing != .untilClose && !dechunk && !ctx.draining
            && state.requests + 1 < state.maxRequests
        let b = ub.buffer!
        ws.iov.reset()
        HeadRewriter.response(ws.iov, UnsafeRawPointer(b.base + b.readIndex), rh, close: !clientKeep && head.versionMinor == 1,
                              keepAlive10: clientKeep && head.versionMinor == 0, dechunk: dechunk)
        b.readIndex += rh.end
        setPhase(.writing)
        var rf = BodyFramer(framing)
        var extra = false
        if dechunk {
            do {
                if try !sendNow(ws.iov) { try await send(ws.iov, staging: ws.tlsStaging, until: EventLoop.shared.now + t.clientSend) }
            } catch {
                return .aborted(status: rh.status)
            }
            switch await relayDecoded(ws, conn, &rf) {
            case .some(let e): return .aborted(status: e)
            case .none: break
            }
        } else {
            let r = rf.scan(b.readableBytes)
            if r.error != nil { return .badResponse }
            ws.iov.add(UnsafeRawPointer(b.base + b.readIndex), r.consumed)
            do {
                if try !sendNow(ws.iov) { try await send(ws.iov, staging: ws.tlsStaging, until: EventLoop.shared.now + t.clientSend) }
            } catch {
                if error == .timedOut { ctx.stats.timedOut(.clientSend) }
                return .aborted(status: rh.status)
            }
            b.readIndex += r.consumed
            var done = r.done
            extra = done && !b.isEmpty
            while !done {
                ub.releaseIfEmpty()
                let n: Int
                do {
                    n = try await conn.fill(ub, until: EventLoop.shared.now + t.upstreamRead)
                } catch {
                    if error == .timedOut { ctx.stats.timedOut(.upstreamRead) }
                    return .aborted(status: rh.status)
                }
                if n == 0 {
                    if rf.eof() { break }
                    return .aborted(status: rh.status)  // truncated: the client must not see a short body as whole
                }
                let bb = ub.buffer!
                let r = rf.scan(bb.readableBytes)
                if r.error != nil { return .aborted(status: rh.status) }
                do {
                    try await send(UnsafeRawBufferPointer(start: bb.base + bb.readIndex, count: r.consumed), until: EventLoop.shared.now + t.clientSend)
                } catch {
                    if error == .timedOut { ctx.stats.timedOut(.clientSend) }
                    return .aborted(status: rh.status)
                }
                bb.readIndex += r.consumed
                done = r.done
                extra = done && !bb.isEmpty
            }
        }
        ub.release()
        let reuse = ReuseChecklist(responseComplete: rf.isComplete, requestBodySent: true,
                                   serverKeepAlive: rh.keepAlive && framing != .untilClose, extraBytes: extra,
                                   errorSeen: false, requestsServed: conn.requests + 1,
                                   maxRequests: group.config.maxRequestsPerConnection, draining: ctx.draining)
        return .completed(clientKeepAlive: clientKeep, upstreamReusable: reuse.reusable, status: rh.status)
    }

    /// Relays a chunked body decoded (for an HTTP/1.0 client, which then sees the end by close).
    /// Returns a status on failure.
    @LoopActor
    private func relayDecoded(_ ws: Workspace, _ conn: UpstreamConnection, _ rf: inout BodyFramer) async -> Int? {
        let ub = ws.upstream
        let t = ctx.config.timeouts
        while true {
            if let b = ub.buffer, !b.isEmpty {
                switch rf.next(b.readableBytes) {
                case .data(let off, let count, let used):
                    do {
                        try await send(UnsafeRawBufferPointer(start: b.base + b.readIndex + off, count: count), until: EventLoop.shared.now + t.clientSend)
                    } catch {
                        return 499
                    }
                    b.readIndex += used
                    continue
                case .framing(let used):
                    b.readIndex += used
                    continue
                case .end(let used):
                    b.readIndex += used
                    return nil
                case .error:
                    return 502
                case .needMore:
                    break
                }
            }
            ub.releaseIfEmpty()
            do {
                if try await conn.fill(ub, until: EventLoop.shared.now + t.upstreamRead) == 0 { return 502 }
            } catch {
                return 504
            }
        }
    }
}
