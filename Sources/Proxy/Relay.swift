import HTTP1
import Runtime

/// The last phases of an exchange: the response head to the client, then its body as it comes.
extension ClientSession {
    /// Sends the rewritten response head with the first body bytes in the same writev, then relays
    /// the rest. A response that ends early is `.truncated`: the client connection then closes,
    /// since a short body must never look whole.
    @LoopActor @inline(__always)
    func relayResponse(_ ws: Workspace, _ conn: UpstreamConnection, _ plan: RequestPlan) async throws(ExchangeFailure) -> Completed {
        let rh = ws.response.head
        let framing = rh.responseFraming(requestMethod: plan.method)
        let http10 = plan.versionMinor == 0
        let dechunk = framing == .chunked && http10
        let clientKeep = plan.keepAlive && framing != .untilClose && !dechunk && !ctx.draining
            && state.requests + 1 < state.maxRequests
        let b = ws.upstream.buffer!
        ws.iov.reset()
        HeadRewriter.response(ws.iov, UnsafeRawPointer(b.base + b.readIndex), rh, close: !clientKeep && !http10,
                              keepAlive10: clientKeep && http10, dechunk: dechunk)
        b.readIndex += rh.end
        setPhase(.writing)
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
                                   serverKeepAlive: rh.keepAlive && framing != .untilClose, extraBytes: extra,
                                   errorSeen: plan.ambiguous, requestsServed: conn.requests + 1,
                                   maxRequests: group.config.maxRequestsPerConnection, draining: ctx.draining)
        return Completed(clientKeepAlive: clientKeep, upstreamReusable: reuse.reusable, status: rh.status)
    }

    /// Writes what the kernel takes of the gather list now; true when all of it went.
    private func sendNowToClient(_ list: IOVecList) throws(ExchangeFailure) -> Bool {
        do throws(IOError) {
            return try sendNow(list)
        } catch {
            throw clientFailure(error)
        }
    }

    /// Sends the rest of the gather list to the client (the response has started once any of it
    /// went out).
    @LoopActor
    private func sendToClient(_ list: IOVecList, _ ws: Workspace) async throws(ExchangeFailure) {
        do throws(IOError) {
            try await send(list, staging: ws.tlsStaging, until: EventLoop.shared.now + ctx.config.timeouts.clientSend)
        } catch {
            throw clientFailure(error)
        }
    }

    @LoopActor @inline(__always)
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

    /// Reads more of the response body; 0 is the backend's EOF.
    @LoopActor @inline(__always)
    private func readBody(_ conn: UpstreamConnection, _ ub: BufferSlot) async throws(ExchangeFailure) -> Int {
        ub.releaseIfEmpty()
        do throws(IOError) {
            return try await conn.fill(ub, until: EventLoop.shared.now + ctx.config.timeouts.upstreamRead)
        } catch {
            throw ExchangeFailure(.truncated(error), requestSent: true, responseStarted: true)
        }
    }

    /// Relays the body bytes as they are, until the framer says it ended (or the backend closes a
    /// close-delimited body). Returns whether bytes beyond the response's end arrived.
    @LoopActor @inline(__always)
    private func relayRaw(_ ws: Workspace, _ conn: UpstreamConnection, _ rf: inout BodyFramer) async throws(ExchangeFailure) -> Bool {
        let ub = ws.upstream
        while !rf.isComplete {
            if try await readBody(conn, ub) == 0 {
                if rf.eof() { return false }
                throw ExchangeFailure(.truncated(nil), requestSent: true, responseStarted: true)
            }
            let b = ub.buffer!
            let r = rf.scan(b.readableBytes)
            if r.error != nil { throw ExchangeFailure(.truncated(nil), requestSent: true, responseStarted: true) }
            try await sendToClient(UnsafeRawBufferPointer(start: b.base + b.readIndex, count: r.consumed))
            b.readIndex += r.consumed
        }
        return !ub.isEmpty
    }

    /// Relays a chunked body decoded, for an HTTP/1.0 client (which then sees the end by close).
    @LoopActor
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
