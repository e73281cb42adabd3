import HTTP1
import Runtime

/// The last phases of an exchange: the response head to the client, then its body as it comes.
extension ClientSession {
    /// Sends the rewritten response head with the first body bytes in the same writev, then relays
    /// the rest. A response that ends early is `.truncated`: the client connection then closes,
    /// since a short body must never look whole.
    @inline(__always) nonisolated(nonsending)
    func relayResponse(_ ws: Workspace, _ conn: UpstreamConnection, _ plan: RequestPlan) async throws(ExchangeFailure) -> Completed {
        let framing = ws.response.lendHead { $0.responseFraming(requestMethod: plan.method) }
        let http10 = plan.versionMinor == 0
        let dechunk = framing == .chunked && http10
        let clientKeep = plan.keepAlive && framing != .untilClose && !dechunk && !ctx.draining
            && state.requests + 1 < state.maxRequests
        let b = ws.upstream.buffer!
        ws.iov.reset()
        let iov = ws.iov, at = UnsafeRawPointer(b.base + b.readIndex)
        ws.response.lendHead {
            HeadRewriter.response(iov, at, $0, close: !clientKeep && !http10, keepAlive10: clientKeep && http10, dechunk: dechunk)
        }
        b.readIndex += ws.response.head.end
        setPhase(.writing)
        sendRate = MinRate(ctx.config.limits)
        sendRateArmed = false
        var rf = BodyFramer(framing)
        if !dechunk {
            let r = rf.scan(b.readableBytes)
            if r.error != nil { throw ExchangeFailure(.badResponse, requestSent: true) }
            ws.iov.add(UnsafeRawPointer(b.base + b.readIndex), r.consumed)
            if try !sendNowToClient(ws.iov) { try await sendToClient(ws.iov, ws) }
            b.readIndex += r.consumed
        } else {
            if try !sendNowToClient(ws.iov) { try await sendToClient(ws.iov, ws) }
        }
        let extraRead: Bool
        if dechunk {
            extraRead = try await relayDecoded(ws, conn, &rf)
        } else if rf.isComplete {
            extraRead = !ws.upstream.isEmpty  // the whole body came with the head
        } else {
            extraRead = try await relayRaw(ws, conn, &rf)
        }
        // Bytes past the response's end, in our buffer or still inside OpenSSL: out of step.
        let extra = extraRead || (conn.tls?.hasPendingBytes ?? false)
        ws.upstream.release()
        let reuse = ReuseChecklist(responseComplete: rf.isComplete, requestBodySent: true,
                                   serverKeepAlive: ws.response.head.keepAlive && framing != .untilClose, extraBytes: extra,
                                   errorSeen: plan.ambiguous || plan.wantsTunnel, requestsServed: conn.requests + 1,
                                   maxRequests: group.config.maxRequestsPerConnection, draining: ctx.draining)
        return Completed(clientKeepAlive: clientKeep, upstreamReusable: reuse.reusable, status: ws.response.head.status)
    }

    /// Writes what the kernel takes of the gather list now; true when all of it went.
    func sendNowToClient(_ list: IOVecList) throws(ExchangeFailure) -> Bool {
        do throws(IOError) {
            return try sendNow(list)
        } catch {
            throw clientFailure(error)
        }
    }

    /// Sends the rest of the gather list to the client (the response has started once any of it
    /// went out).
    nonisolated(nonsending)
    func sendToClient(_ list: IOVecList, _ ws: Workspace) async throws(ExchangeFailure) {
        do throws(IOError) {
            try await send(list, staging: ws.tlsStaging, until: EventLoop.shared.now + ctx.config.timeouts.clientSend)
        } catch {
            throw clientFailure(error)
        }
    }

    @inline(__always) nonisolated(nonsending)
    private func sendToClient(_ bytes: UnsafeRawBufferPointer) async throws(ExchangeFailure) {
        do throws(IOError) {
            try await send(bytes, until: EventLoop.shared.now + ctx.config.timeouts.clientSend)
        } catch {
            throw clientFailure(error)
        }
    }

    private func clientFailure(_ e: IOError) -> ExchangeFailure {
        ExchangeFailure(e == .timedOut ? .clientTimeout(.clientSend) : .clientGone, requestSent: true, responseStarted: true)
    }

    /// Reads more of the response body into the upstream slot; 0 is the backend's EOF.
    @inline(__always) nonisolated(nonsending)
    private func readBody(_ conn: UpstreamConnection, _ ub: BufferSlot) async throws(ExchangeFailure) -> Int {
        ub.releaseIfEmpty()
        do throws(IOError) {
            return try await conn.fill(ub, until: EventLoop.shared.now + ctx.config.timeouts.upstreamRead)
        } catch {
            throw ExchangeFailure(.truncated(error), requestSent: true, responseStarted: true)
        }
    }

    /// Reads the body from the backend as fast as it comes, into the workspace's response queue
    /// (up to `response_buffer`, while buffer memory allows), handing the client what it takes
    /// without waiting for it; the rest waits in the queue for `deliver`, after the connection
    /// is back in the pool. Only a full queue makes the backend wait for the client
    /// (backpressure), and then the client's pace counts against the minimum rate. Returns whether
    /// bytes beyond the response's end arrived.
    nonisolated(nonsending)
    private func relayRaw(_ ws: Workspace, _ conn: UpstreamConnection, _ rf: inout BodyFramer) async throws(ExchangeFailure) -> Bool {
        let q = ws.responseQueue
        if let b = ws.upstream.buffer {  // what is left after the head's bytes went out
            ws.upstream.buffer = nil
            q.adopt(b)
        }
        let limit = ctx.config.responseBuffer
        var moved = 0
        while !rf.isComplete {
            if q.tailRoom == 0 {
                if q.isEmpty || (q.capacity < limit && ctx.mayTakeExtraBuffer) {
                    q.grow()
                } else {
                    try await sendFront(q)  // the client must take some before we read more
                    continue
                }
            }
            if q.front.count > 0 && !conn.socket.mayRead && !(conn.tls?.hasPendingBytes ?? false) {
                // Bytes wait for the client and the backend has sent nothing new: whichever side
                // moves first (a stream that pauses must not keep what the client could take).
                try await waitForEitherSide(conn)
                try sendQueuedNow(q)
                continue
            }
            let room = q.tail
            let n = try await readBody(conn, room)
            if n == 0 {
                if rf.eof() { return false }
                throw ExchangeFailure(.truncated(nil), requestSent: true, responseStarted: true)
            }
            let r = rf.scan(UnsafeRawBufferPointer(rebasing: room[0..<n]))
            if r.error != nil { throw ExchangeFailure(.truncated(nil), requestSent: true, responseStarted: true) }
            q.wrote(r.consumed)
            if r.consumed < n { return true }
            sendRateArmed = true
            try sendQueuedNow(q)
            await yieldAfterLongRun(&moved, n)
        }
        return false
    }

    /// Waits until the backend has more or the client can take more, within `upstream_read` and
    /// `client_send`.
    nonisolated(nonsending)
    private func waitForEitherSide(_ conn: UpstreamConnection) async throws(ExchangeFailure) {
        let now = EventLoop.shared.now
        let upstreamDeadline = now + ctx.config.timeouts.upstreamRead
        let clientDeadline = now + ctx.config.timeouts.clientSend
        if await conn.socket.waitReadable(orWritable: socket, until: upstreamDeadline, otherUntil: clientDeadline) { return }
        if socket.isClosed { throw clientFailure(.closed) }
        if conn.socket.isClosed { throw ExchangeFailure(.truncated(.closed), requestSent: true, responseStarted: true) }
        if EventLoop.shared.now >= upstreamDeadline { throw ExchangeFailure(.truncated(.timedOut), requestSent: true, responseStarted: true) }
        throw clientFailure(.timedOut)
    }

    /// Reads more of the response body into `room`; 0 is the backend's EOF.
    @inline(__always) nonisolated(nonsending)
    private func readBody(_ conn: UpstreamConnection, _ room: UnsafeMutableRawBufferPointer) async throws(ExchangeFailure) -> Int {
        do throws(IOError) {
            return try await conn.read(into: room, until: EventLoop.shared.now + ctx.config.timeouts.upstreamRead)
        } catch {
            throw ExchangeFailure(.truncated(error), requestSent: true, responseStarted: true)
        }
    }

    /// Hands the client what it takes of the queue now, without waiting: until the queue is empty
    /// or a write would block (a short write is not enough to know: TLS returns after a record).
    private func sendQueuedNow(_ q: BufferChain) throws(ExchangeFailure) {
        while true {
            let f = q.front
            if f.count == 0 { return }
            let n: Int
            do throws(IOError) {
                n = try sendNow(f)
            } catch {
                throw clientFailure(error)
            }
            if n == 0 { return }
            q.consume(n)
        }
    }

    /// Waits until the client has taken the queue's first buffer, within `client_send` and the
    /// minimum rate. What the client took is measured by the kernel's send queue, not by what we
    /// wrote: the kernel may hold megabytes for a client that reads a few bytes a second.
    nonisolated(nonsending)
    private func sendFront(_ q: BufferChain) async throws(ExchangeFailure) {
        let f = q.front
        let now = EventLoop.shared.now
        let unsent = socket.unsentBytes
        sendRateArmed = true
        do throws(IOError) {
            try await send(f, until: sendRate.deadline(now: now, limit: now + ctx.config.timeouts.clientSend))
        } catch {
            sendRate.record(waitFrom: now, to: EventLoop.shared.now, moved: 0)
            if error == .timedOut && sendRate.exceeded {
                throw ExchangeFailure(.clientTimeout(.responseMinRate), requestSent: true, responseStarted: true)
            }
            throw clientFailure(error)
        }
        sendRate.record(waitFrom: now, to: EventLoop.shared.now, moved: f.count - (socket.unsentBytes - unsent))
        q.consume(f.count)
    }

    /// The last phase, once the backend connection is back in the pool: the client takes the
    /// rest of the response from the queue at its own pace (bounded by the minimum rate).
    nonisolated(nonsending)
    func deliver(_ ws: Workspace) async throws(ExchangeFailure) {
        let q = ws.responseQueue
        defer { q.release() }
        var moved = 0
        while true {
            let n = q.front.count
            if n == 0 { return }
            try await sendFront(q)
            await yieldAfterLongRun(&moved, n)
        }
    }

    /// When both peers keep up, a relay never has to wait, and one big response would hold the
    /// loop until it is through: every `fairShare` bytes the task goes to the back of the queue,
    /// so a turn of the loop stays short and a small request arriving meanwhile is not held up
    /// by hundreds of megabytes moving for others.
    @inline(__always) nonisolated(nonsending)
    private func yieldAfterLongRun(_ moved: inout Int, _ n: Int) async {
        moved += n
        if moved >= Self.fairShare {
            moved = 0
            await Task.yield()
        }
    }

    static let fairShare = 256 * 1024

    /// Relays a chunked body decoded, for an HTTP/1.0 client (which then sees the end by close).
    nonisolated(nonsending)
    private func relayDecoded(_ ws: Workspace, _ conn: UpstreamConnection, _ rf: inout BodyFramer) async throws(ExchangeFailure) -> Bool {
        let ub = ws.upstream
        while true {
            if let b = ub.buffer, !b.isEmpty {
                switch rf.next(b.readableBytes) {
                case .data(let off, let count, let used):
                    try await sendToClient(UnsafeRawBufferPointer(start: b.base + b.readIndex + off, count: count))
                    b.readIndex += used
                    continue
                case .framing(let used):
                    b.readIndex += used
                    continue
                case .end(let used):
                    b.readIndex += used
                    return !b.isEmpty
                case .error:
                    throw ExchangeFailure(.truncated(nil), requestSent: true, responseStarted: true)
                case .needMore:
                    break
                }
            }
            if try await readBody(conn, ub) == 0 { throw ExchangeFailure(.truncated(nil), requestSent: true, responseStarted: true) }
        }
    }
}
