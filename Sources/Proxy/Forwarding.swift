import Config
import HTTP1
import Runtime

/// What the proxy knows about a request before its first attempt. The head itself stays in the
/// workspace (`ws.request.head`); the plan carries the few facts the phases ask for, so it is
/// cheap to pass from phase to phase.
struct RequestPlan {
    let method: Method
    let versionMinor: Int
    let keepAlive: Bool
    let expectContinue: Bool
    let ambiguous: Bool
    /// A 101 from the backend turns the connection into a tunnel (see `HeadSemantics`).
    let wantsTunnel: Bool
    /// Where the head ends in the inbound buffer (from its read index).
    let headEnd: Int
    /// The body framer, past the body bytes already buffered.
    var framer: BodyFramer
    /// Body bytes already in the inbound buffer after the head.
    var buffered: Int
    /// Body bytes read into the workspace's request spool (after those in the inbound buffer).
    var spooled = 0
    /// The whole body is buffered: the request can be sent again, and nothing of it is left to read.
    var bodyDone: Bool
    /// The client's pace so far, carried from reading the body into streaming the rest.
    var bodyRate: MinRate

    var idempotent: Bool { method.isIdempotent }
    /// Safe to send again after a stale pooled connection fails it: idempotent, body all in hand.
    var replayable: Bool { bodyDone && idempotent }

    /// From the request head in `ws`, read field by field where it lies (binding the whole head
    /// would copy it, array and all, on every request).
    init(_ ws: Workspace, framer: BodyFramer, buffered: Int, bodyDone: Bool, rate: MinRate) {
        bodyRate = rate
        method = ws.request.head.methodKind
        versionMinor = ws.request.head.versionMinor
        keepAlive = ws.request.head.keepAlive
        expectContinue = ws.request.head.expectContinue
        ambiguous = ws.request.head.ambiguous
        wantsTunnel = ws.request.head.wantsTunnel
        headEnd = ws.request.head.end
        self.framer = framer
        self.buffered = buffered
        self.bodyDone = bodyDone
    }
}

/// Where a request stands across its attempts (one failover, one stale-connection retry).
struct Attempts {
    var excluded: UpstreamServer?
    var failedOver = false
    var staleRetried = false
    /// Skip pooled connections: the last one was stale.
    var fresh = false
}

/// A completed exchange: the response was relayed whole.
struct Completed {
    let clientKeepAlive: Bool
    let upstreamReusable: Bool
    let status: Int
    /// The backend switched protocols (101): both connections become a tunnel.
    var switched = false
}

extension ClientSession {
    /// A request's life: admit → acquire a connection → exchange (send head, send body, read head,
    /// relay body) → release; on failure, a retry when safe or the answer the client is owed.
    /// Returns whether the client connection may stay open.
    nonisolated(nonsending)
    func proxy(_ ws: Workspace) async -> Bool {
        let stats = ctx.stats
        stats.requestsInFlight += 1
        defer { stats.requestsInFlight -= 1 }
        let started = EventLoop.shared.now
        let headBytes = UnsafeRawPointer(inbound.buffer!.base + inbound.buffer!.readIndex)
        beginAccess(ws, head: headBytes, versionMinor: ws.request.head.versionMinor)
        // Before admitting: a request refused there is logged with its id too.
        assignRequestID(ws, head: headBytes)
        var plan: RequestPlan
        switch admit(ws) {
        case .success(let p): plan = p
        case .failure(let e): return await conclude(ExchangeFailure(.badBody(e), requestSent: false), plan: nil, ws, started: started)
        }
        defer { returnSpool(ws) }
        if !plan.bodyDone {
            do throws(ExchangeFailure) {
                try await receiveBody(ws, &plan)
            } catch {
                return await conclude(error, plan: plan, ws, started: started)
            }
        }
        watchForHangup()
        defer { stopWatchingForHangup() }
        var attempts = Attempts()
        while true {
            let lease: UpstreamGroup.Lease
            setPhase(.waitingUpstream)
            if !attempts.fresh, attempts.excluded == nil, let idle = group.tryAcquireIdle(verify: !plan.replayable) {
                lease = idle  // the common case, without a suspension point
            } else {
                switch await acquire(&attempts, replayable: plan.replayable) {
                case .success(let l): lease = l
                case .failure(let f):
                    if let s = f.server { ws.access.attempt(s, connect: nil) }  // connecting failed
                    if clientHungUp { return await conclude(ExchangeFailure(.clientGone, requestSent: false), plan: plan, ws, started: started) }
                    if retryLogged(after: f, reused: false, plan, ws, &attempts) { continue }
                    return await conclude(f.failure, plan: plan, ws, started: started)
                }
            }
            let conn = lease.conn
            if ctx.accessLog != nil { ws.access.attempt(conn.server, connect: lease.reused ? 0 : conn.connectTime) }
            if clientHungUp {
                // The client left while we waited for a connection: nothing was sent on it.
                group.release(conn, reusable: true)
                return await conclude(ExchangeFailure(.clientGone, requestSent: false), plan: plan, ws, started: started)
            }
            upstreamInUse = conn
            conn.mayFailOver = plan.bodyDone && plan.idempotent && !attempts.failedOver  // if its server hangs
            do throws(ExchangeFailure) {
                let done = try await exchange(ws, conn, plan)
                upstreamInUse = nil
                if done.switched {
                    finish(101, started, ws)
                    becomeTunnel(ws, conn)
                    return false
                }
                conn.requests += 1
                group.release(conn, reusable: done.upstreamReusable, succeeded: true)
                // The backend is done and back in the pool; the client takes the rest at its pace.
                if !ws.responseQueue.isEmpty {
                    do throws(ExchangeFailure) {
                        try await deliver(ws)
                    } catch {
                        return await conclude(error, plan: plan, ws, started: started)
                    }
                }
                finish(done.status, started, ws)
                return done.clientKeepAlive
            } catch {
                upstreamInUse = nil
                group.release(conn, reusable: false)
                if retryLogged(after: TaggedFailure(failure: error, server: conn.server), reused: lease.reused, plan, ws, &attempts) {
                    continue
                }
                if error.countsAgainstServer { group.failed(conn.server) }
                return await conclude(error, plan: plan, ws, started: started)
            }
        }
    }

    /// The request's X-Request-ID line, made once so every attempt and every log line share it;
    /// `head`: where the bytes of `ws.request`'s head are (an HTTP/2 stream's are not in `inbound`).
    func assignRequestID(_ ws: Workspace, head p: UnsafeRawPointer) {
        guard ctx.config.requestID else {
            ws.requestIDLength = 0
            return
        }
        let line = ws.requestIDLine
        let n = ws.request.lendHead { RequestID.line(into: line, head: $0, bytes: p, source: &ctx.requestIDs) }
        ws.requestIDLength = n
    }

    /// Checks what can be checked before any backend is involved: the declared body size against
    /// `max_body_bytes` and the framing of the body bytes already buffered.
    private func admit(_ ws: Workspace) -> Result<RequestPlan, HTTPError> {
        let inb = inbound.buffer!
        let afterHead = inb.readIndex + ws.request.head.end
        if spoofsClientSubject(ws, head: UnsafeRawPointer(inb.base + inb.readIndex)) {
            return .failure(.badRequest("client subject header named by Connection or spelled alike"))
        }
        if ctx.config.limits.maxBodyBytes > 0, let n = ws.request.head.contentLength, n > ctx.config.limits.maxBodyBytes {
            return .failure(.bodyTooLarge)
        }
        var framer = BodyFramer(ws.request.head.requestFraming)
        let pre = framer.scan(UnsafeRawBufferPointer(start: inb.base + afterHead, count: inb.writeIndex - afterHead))
        if let e = pre.error { return .failure(e) }
        requestEnd = afterHead + pre.consumed
        return .success(RequestPlan(ws, framer: framer, buffered: pre.consumed, bodyDone: pre.done, rate: MinRate(ctx.config.limits)))
    }

    /// The client-certificate subject header this connection's listener sets, or else the one
    /// some other listener sets (a client must not write it anywhere).
    var subjectHeaderName: [UInt8]? {
        if let c = tls?.context, c.forwardsClientSubject { return c.clientSubjectHeaderLowercased }
        return ctx.subjectHeaderLowercased
    }

    /// Whether the request names the client-certificate subject header (which only the proxy
    /// sets) in its Connection header, or sends a lookalike spelling of it.
    func spoofsClientSubject(_ ws: Workspace, head p: UnsafeRawPointer) -> Bool {
        guard let name = subjectHeaderName else { return false }
        return name.withUnsafeBytes { HeadRewriter.spoofsClientSubject(p, ws.request.head, $0) }
    }

    /// A failure from acquiring, with the server it happened on (for a connect error).
    struct TaggedFailure: Error {
        let failure: ExchangeFailure
        let server: UpstreamServer?
    }

    /// Phase 1, when no idle pooled connection was at hand: a new connection to a server of the
    /// group, or one after a wait in the queue.
    nonisolated(nonsending)
    private func acquire(_ a: inout Attempts, replayable: Bool) async -> Result<UpstreamGroup.Lease, TaggedFailure> {
        do {
            defer { queuedWaiter = nil }
            return .success(try await group.acquire(excluding: a.excluded, fresh: a.fresh, verify: !replayable, queued: { queuedWaiter = $0 }))
        } catch {
            var server: UpstreamServer?
            if case .connect(_, let s) = error { server = s }
            return .failure(TaggedFailure(failure: ExchangeFailure(error), server: server))
        }
    }

    /// `retry`, with the failure written to the error log when the backend is to blame (not for
    /// the stale keep-alive race, which is nobody's fault).
    private func retryLogged(after t: TaggedFailure, reused: Bool, _ plan: RequestPlan, _ ws: Workspace, _ a: inout Attempts) -> Bool {
        let wasStale = a.staleRetried
        let again = retry(after: t, reused: reused, plan, &a)
        if again { ws.access.retries += 1 }
        if t.failure.party == .upstream, let s = t.server, !(again && a.staleRetried && !wasStale) {
            ctx.errorLog.upstreamFailed(t.failure, server: s, client: peer, request: ws.requestID, retrying: again)
        }
        return again
    }

    /// Whether to try again after `f`: once on a fresh connection after the stale keep-alive race
    /// (the server closed a pooled connection as we reused it: not its fault, not the client's
    /// business), and once on another server. Only when the whole body is still buffered and
    /// the failure makes it safe.
    private func retry(after t: TaggedFailure, reused: Bool, _ plan: RequestPlan, _ a: inout Attempts) -> Bool {
        let f = t.failure
        guard plan.bodyDone, !clientHungUp, f.retrySafe(idempotent: plan.idempotent) else { return false }
        if f.mayBeStaleRace && reused && !a.staleRetried {
            a.staleRetried = true
            a.fresh = true
            ctx.stats.staleRetriesTotal += 1
            return true
        }
        // A backend that did not answer in time, with nothing of its answer seen, is left for
        // another server when the request is idempotent (nginx's `proxy_next_upstream timeout`).
        guard !a.failedOver, group.config.retry, group.servers.count > 1, let s = t.server else { return false }
        if case .connect = f.cause {} else { group.failed(s) }  // a connect error was counted when it happened
        if let k = f.timeout { ctx.stats.timedOut(k) }
        a.failedOver = true
        a.excluded = s
        ctx.stats.retriesTotal += 1
        return true
    }

    /// The request failed for good: count it, answer the client when it can still be answered,
    /// and say whether its connection may stay open (only when the request was consumed whole and
    /// the fault was not the client's).
    nonisolated(nonsending)
    private func conclude(_ f: ExchangeFailure, plan: RequestPlan?, _ ws: Workspace, started: UInt64) async -> Bool {
        ctx.stats.count(f)
        if f.responseStarted || f.cause == .clientGone {
            finish(f.status, started, ws)
            return false
        }
        // A client that asked to close (Connection: close, HTTP/1.0) is answered and closed (RFC 9112 §9.6).
        let keep = (plan.map { $0.bodyDone && $0.keepAlive } ?? false) && f.party != .client
        if let b = inbound.buffer, keep {
            // The request (all of it is buffered) is done with; pipelined bytes after it stay.
            b.readIndex = min(b.writeIndex, requestEnd)
        }
        let retryAfter: Int? = f.status == 503 ? 1 : nil
        if !keep { lingerOnClose = true }
        await respond(Responses.error(f.status, close: !keep, retryAfter: retryAfter))
        finish(f.status, started, ws)
        return keep
    }

    /// The request is over: counted by status class, timed, and logged.
    func finish(_ status: Int, _ started: UInt64, _ ws: Workspace) {
        countRequest(status, started)
        logAccess(ws, status: status, started: started)
    }

    /// A request of this connection answered with `status`, begun at `started`: counted by status
    /// class and timed (an HTTP/2 stream's too).
    @inline(__always)
    func countRequest(_ status: Int, _ started: UInt64) {
        group.requestsByClass[min(max(status / 100, 0), 5)] += 1
        ctx.onRequestDone(groupIndex, status, EventLoop.shared.now &- started)
    }
}
