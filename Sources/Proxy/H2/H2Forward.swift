import CNghttp2
import Glibc
import HTTP1
import Runtime

/// One HTTP/2 request's life as named phases, like an HTTP/1.1 request's: make and check the
/// HTTP/1.1 head → acquire a backend connection (the same pool) → send head and body → read the
/// response head → submit it → relay the body → release. Failures are `ExchangeFailure`s, so the
/// status, passive health and timeout counts are those of HTTP/1.1.
struct H2Forward {
    let stream: H2Stream
    unowned(unsafe) let conn: H2Connection
    var ctx: ProxyContext { conn.ctx }
    var client: ClientSession { conn.client }
    var group: UpstreamGroup { client.group }

    @LoopActor
    func run() async {
        let stats = ctx.stats
        stats.requestsInFlight += 1
        let started = EventLoop.shared.now
        let ws = ctx.takeWorkspace()
        ws.request.reset()
        let head = ctx.clientBuffers.take()
        ws.access.clear()
        let status = await forward(ws, head)
        client.logAccess(ws, status: status, started: started, bytesSent: stream.bytesOut)
        ctx.clientBuffers.give(head)
        ctx.giveWorkspace(ws)
        stats.requestsInFlight -= 1
        client.countRequest(status, started)
        stats.h2RequestsTotal += 1
        stream.running = false
        conn.streamFinished(stream)
    }

    /// The whole request; returns the status it is recorded with.
    @LoopActor
    private func forward(_ ws: Workspace, _ head: IOBuffer) async -> Int {
        // Reset before its task ran (a rapid-reset flood): never reaches a backend.
        if stream.closed { return 499 }
        if let refused = prepare(ws, head) { return answer(refused) }
        let replayable = stream.requestEnded && stream.bodyIn.isEmpty && ws.request.head.methodKind.isIdempotent
        var fresh = false
        while true {
            let lease: UpstreamGroup.Lease
            if !fresh, let idle = group.tryAcquireIdle(verify: !replayable) {
                lease = idle
            } else {
                do {
                    lease = try await group.acquire(excluding: nil, fresh: fresh, verify: !replayable)
                } catch {
                    return fail(ExchangeFailure(error))
                }
            }
            let c = lease.conn
            ws.access.attempt(c.server, connect: lease.reused ? 0 : c.connectTime)
            if stream.closed {
                group.release(c, reusable: true)
                return 499
            }
            stream.upstream = c
            do throws(ExchangeFailure) {
                let reusable = try await exchange(ws, head, c)
                stream.upstream = nil
                c.requests += 1
                group.release(c, reusable: reusable, succeeded: true)
                return ws.response.head.status
            } catch {
                stream.upstream = nil
                group.release(c, reusable: false)
                // The stale keep-alive race: once more on a fresh connection, when that is safe.
                if error.mayBeStaleRace && lease.reused && !fresh && replayable && !stream.closed {
                    fresh = true
                    ws.access.retries += 1
                    ctx.stats.staleRetriesTotal += 1
                    continue
                }
                if error.countsAgainstServer { group.failed(c.server) }
                return fail(error)
            }
        }
    }

    // MARK: Phase: the HTTP/1.1 head

    /// Makes the HTTP/1.1 head in `head` and parses it as any request is; the status to answer
    /// when it cannot go on.
    private func prepare(_ ws: Workspace, _ head: IOBuffer) -> Int? {
        if stream.head.tooLarge { return 431 }
        head.clear()
        switch stream.head.write(into: head.tail, bodyFollows: !stream.requestEnded || !stream.bodyIn.isEmpty) {
        case .success(let made):
            head.writeIndex = made.count
            stream.chunked = made.chunked
        case .failure(.malformed): return 400
        case .failure(.tooLarge): return 431
        }
        switch ws.request.parse(head.readableBytes) {
        case .complete: break
        case .error(let e): return e.status
        case .needMore: return 400
        }
        // From here as an HTTP/1.1 request's: logged with its id, refused if it names the
        // client-certificate subject header (only the proxy says who the client is).
        let p = UnsafeRawPointer(head.base)
        client.beginAccess(ws, head: p, versionMinor: AccessRecord.http2)
        client.assignRequestID(ws, head: p)
        if client.spoofsClientSubject(ws, head: p) { return 400 }
        return nil
    }

    // MARK: Phases on the backend connection

    /// Head and body to the backend, the response head back, then the body relayed; whether the
    /// connection may be reused.
    @LoopActor
    private func exchange(_ ws: Workspace, _ head: IOBuffer, _ c: UpstreamConnection) async throws(ExchangeFailure) -> Bool {
        try await sendHead(ws, head, c)
        try await sendBody(c)
        try await readResponseHead(ws, c)
        return try await relayBody(ws, c)
    }

    @LoopActor
    private func sendHead(_ ws: Workspace, _ head: IOBuffer, _ c: UpstreamConnection) async throws(ExchangeFailure) {
        ws.iov.reset()
        let facts = client.clientFacts(ws), peer = client.peerBytes(ws), iov = ws.iov, p = UnsafeRawPointer(head.base), hostLine = c.server.hostLine
        ws.request.lendHead { HeadRewriter.request(iov, p, $0, peer: peer, hostLine: hostLine, client: facts) }
        do throws(IOError) {
            if try !c.sendNow(ws.iov) {
                try await c.send(ws.iov, staging: ws.upstreamStaging, until: EventLoop.shared.now + ctx.config.timeouts.upstreamSend)
            }
        } catch {
            throw ExchangeFailure(stream.closed ? .clientGone : .send(error), requestSent: ws.iov.written > 0)
        }
    }

    /// The request body as the client sends it (chunked when it gave no content-length); the
    /// client's window grows by what the backend took.
    @LoopActor
    private func sendBody(_ c: UpstreamConnection) async throws(ExchangeFailure) {
        while true {
            if !stream.bodyIn.isEmpty {
                let n = stream.bodyIn.count
                do throws(IOError) {
                    let deadline = EventLoop.shared.now + ctx.config.timeouts.upstreamSend
                    if stream.chunked { try await send(Array((String(n, radix: 16) + "\r\n").utf8), c, deadline) }
                    try await send(stream.bodyIn, c, deadline)
                    if stream.chunked { try await send([13, 10], c, deadline) }
                } catch {
                    throw ExchangeFailure(stream.closed ? .clientGone : .send(error), requestSent: true)
                }
                stream.bodyIn.removeAll(keepingCapacity: true)
                conn.session.consumed(stream: stream.id, n)
                conn.flush()
                continue  // more may have come while we sent
            }
            if stream.requestEnded {
                if stream.chunked {
                    do throws(IOError) {
                        try await send(Array("0\r\n\r\n".utf8), c, EventLoop.shared.now + ctx.config.timeouts.upstreamSend)
                    } catch {
                        throw ExchangeFailure(.send(error), requestSent: true)
                    }
                }
                return
            }
            if stream.closed { throw ExchangeFailure(.clientGone, requestSent: true) }
            guard await stream.wait(until: EventLoop.shared.now + ctx.config.timeouts.clientBody) else {
                throw ExchangeFailure(stream.closed ? .clientGone : .clientTimeout(.clientBody), requestSent: true)
            }
        }
    }

    @LoopActor
    private func send(_ bytes: [UInt8], _ c: UpstreamConnection, _ deadline: UInt64) async throws(IOError) {
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 1)
        defer { copy.deallocate() }
        copy.copyBytes(from: bytes)
        try await c.send(UnsafeRawBufferPointer(copy), until: deadline)
    }

    /// Reads the final response head into `ws.response` (interim 1xx dropped: HTTP/2 clients get
    /// only the final response).
    @LoopActor
    private func readResponseHead(_ ws: Workspace, _ c: UpstreamConnection) async throws(ExchangeFailure) {
        c.headSince = EventLoop.shared.now
        group.awaitingHead(c)
        let ub = ws.upstream
        let deadline = EventLoop.shared.now + ctx.config.timeouts.upstreamHeader
        var sawByte = false
        while true {
            ws.response.reset()
            while try !ws.parsedResponseHead() {
                let n: Int
                do throws(IOError) {
                    n = try await c.fill(ub, until: deadline)
                } catch {
                    if stream.closed { throw ExchangeFailure(.clientGone, requestSent: true) }
                    if error == .timedOut && !sawByte {
                        group.headTimedOut(c)
                        throw ExchangeFailure(.headTimeout, requestSent: true)
                    }
                    throw ExchangeFailure(sawByte ? .badResponse : .closedBeforeHead(error), requestSent: true)
                }
                if n == 0 { throw ExchangeFailure(sawByte ? .badResponse : .closedBeforeHead(nil), requestSent: true) }
                if !sawByte { group.headBegan(c) }
                sawByte = true
            }
            let status = ws.response.head.status
            if status >= 200 { break }
            if status == 101 { throw ExchangeFailure(.badResponse, requestSent: true) }
            ub.buffer!.readIndex += ws.response.head.end
        }
        let took = EventLoop.shared.now &- c.headSince
        c.server.responseTimes?.record(Double(took) * 1e-9)
        ws.access.header = took
    }


    /// Submits the response head and relays the body into the stream's queue, which the client
    /// drains through nghttp2 at the pace of its window; a full queue makes the backend wait.
    @LoopActor
    private func relayBody(_ ws: Workspace, _ c: UpstreamConnection) async throws(ExchangeFailure) -> Bool {
        let ub = ws.upstream, b = ub.buffer!
        let method = ws.request.head.methodKind
        let framing = ws.response.lendHead { $0.responseFraming(requestMethod: method) }
        ws.response.lendHead { ctx.h2Fields.build($0, UnsafeRawPointer(b.base + b.readIndex)) }
        let serverKeepAlive = ws.response.head.keepAlive && framing != .untilClose
        b.readIndex += ws.response.head.end
        if stream.closed { throw ExchangeFailure(.clientGone, requestSent: true) }
        let hasBody = framing != .none
        guard ctx.h2Fields.withFields({ conn.session.respond(stream: stream.id, $0, count: $1, hasBody: hasBody) }) else {
            throw ExchangeFailure(.clientGone, requestSent: true)
        }
        conn.flush()
        var rf = BodyFramer(framing)
        while hasBody && !rf.isComplete {
            if let b = ub.buffer, !b.isEmpty {
                switch rf.next(b.readableBytes) {
                case .data(let off, let count, let used):
                    stream.queue(UnsafeRawBufferPointer(start: b.base + b.readIndex + off, count: count))
                    b.readIndex += used
                    try await waitForRoom()
                    continue
                case .framing(let used):
                    b.readIndex += used
                    continue
                case .end(let used):
                    b.readIndex += used
                    continue
                case .error:
                    throw truncated(nil)
                case .needMore:
                    break
                }
            }
            ub.releaseIfEmpty()
            let n: Int
            do throws(IOError) {
                n = try await c.fill(ub, until: EventLoop.shared.now + ctx.config.timeouts.upstreamRead)
            } catch {
                throw truncated(error)
            }
            if n == 0 {
                guard rf.eof() else { throw truncated(nil) }
                stream.endResponse()
                return false
            }
        }
        if hasBody { stream.endResponse() }
        // Bytes past the response's end: the connection is out of step.
        let extra = !ub.isEmpty || (c.tls?.hasPendingBytes ?? false)
        ub.release()
        return serverKeepAlive && !extra
    }

    /// Waits while the stream's queue is over its limit, within `client_send`.
    @LoopActor
    private func waitForRoom() async throws(ExchangeFailure) {
        while stream.queuedOut > H2Stream.outLimit {
            if stream.closed { throw ExchangeFailure(.clientGone, requestSent: true, responseStarted: true) }
            guard await stream.wait(until: EventLoop.shared.now + ctx.config.timeouts.clientSend) else {
                throw ExchangeFailure(stream.closed ? .clientGone : .clientTimeout(.clientSend), requestSent: true, responseStarted: true)
            }
        }
    }

    private func truncated(_ e: IOError?) -> ExchangeFailure {
        ExchangeFailure(stream.closed ? .clientGone : .truncated(e), requestSent: true, responseStarted: true)
    }

    // MARK: Failures

    /// Counts the failure and tells the client: an error response when none started, else a reset.
    private func fail(_ f: ExchangeFailure) -> Int {
        ctx.stats.count(f)
        if f.cause == .clientGone || stream.closed { return f.status }
        if f.responseStarted {
            conn.session.reset(stream: stream.id, code: UInt32(NGHTTP2_INTERNAL_ERROR.rawValue))
            conn.flush()
            return f.status
        }
        return answer(f.status)
    }

    /// The proxy's own answer: a status and an empty body.
    private func answer(_ status: Int) -> Int {
        guard !stream.closed else { return status }
        ctx.h2Fields.build(status: status)
        _ = ctx.h2Fields.withFields { conn.session.respond(stream: stream.id, $0, count: $1, hasBody: false) }
        conn.flush()
        return status
    }
}
