import HTTP1
import Runtime

/// Phase 0 of a request with a body, before any backend is involved: read the body from the
/// client at the client's pace, so that a slow client never holds a backend slot (nginx reads a
/// body before connecting for the same reason).
extension ClientSession {
    /// Reads the request body into the inbound buffer's free tail and then the workspace's
    /// spool, until it ends (`bodyDone`: the request can then be sent whole, and sent again), or
    /// `request_buffer` is held, or buffer memory is at its limit (the rest then streams once a
    /// connection is leased). Waits are bounded by `client_body` between reads and by the
    /// minimum data rate.
    nonisolated(nonsending)
    func receiveBody(_ ws: Workspace, _ plan: inout RequestPlan) async throws(ExchangeFailure) {
        if plan.expectContinue && plan.versionMinor == 1 { try await sendContinue() }
        let spool = ws.requestSpool
        let maxBody = ctx.config.limits.maxBodyBytes
        setPhase(.reading)
        while !plan.bodyDone {
            let inb = inbound.buffer!
            let intoInbound = spool.isEmpty && inb.writableTail > 0
            if !intoInbound && spool.tailRoom == 0 {
                guard spool.capacity < ctx.config.requestBuffer, ctx.mayTakeExtraBuffer else { return }
                spool.grow()
            }
            let room = intoInbound ? inb.tail : spool.tail
            let n = try await readClientBody(into: room, &plan.bodyRate, sent: false)
            let r = plan.framer.scan(UnsafeRawBufferPointer(rebasing: room[0..<n]))
            if let e = r.error { throw ExchangeFailure(.badBody(e), requestSent: false) }
            if intoInbound {
                inb.writeIndex += n
                plan.buffered += r.consumed
                requestEnd += r.consumed
            } else {
                spool.wrote(n)
                spool.trailing = n - r.consumed  // pipelined bytes after the body, if it ended here
                plan.spooled += r.consumed
            }
            if maxBody > 0 && UInt64(plan.buffered + plan.spooled) > maxBody {
                throw ExchangeFailure(.badBody(.bodyTooLarge), requestSent: false)
            }
            plan.bodyDone = r.done
        }
    }

    /// One read of body bytes from the client, within `client_body` and the minimum rate
    /// (`sent`: some of the request already went to a backend).
    nonisolated(nonsending)
    func readClientBody(into room: UnsafeMutableRawBufferPointer, _ rate: inout MinRate, sent: Bool) async throws(ExchangeFailure) -> Int {
        let now = EventLoop.shared.now
        let n: Int
        do throws(IOError) {
            n = try await read(into: room, until: rate.deadline(now: now, limit: now + ctx.config.timeouts.clientBody))
        } catch {
            rate.record(waitFrom: now, to: EventLoop.shared.now, moved: 0)
            guard error == .timedOut else { throw ExchangeFailure(.clientGone, requestSent: sent) }
            throw ExchangeFailure(.clientTimeout(rate.exceeded ? .requestMinRate : .clientBody), requestSent: sent)
        }
        rate.record(waitFrom: now, to: EventLoop.shared.now, moved: n)
        if n == 0 { throw ExchangeFailure(.clientGone, requestSent: sent) }
        return n
    }

    /// Answers `Expect: 100-continue` (RFC 9110 §10.1.1): we read the body ourselves.
    nonisolated(nonsending)
    func sendContinue() async throws(ExchangeFailure) {
        do throws(IOError) {
            try await send(UnsafeRawBufferPointer(start: Responses.continue100.utf8Start, count: Responses.continue100.utf8CodeUnitCount),
                           until: EventLoop.shared.now + ctx.config.timeouts.clientSend)
        } catch {
            throw ExchangeFailure(.clientGone, requestSent: false)
        }
    }

    /// After the request: pipelined bytes that arrived in the spool behind its body go back to
    /// the inbound buffer (whose bytes the request used up), and the spool is given back.
    func returnSpool(_ ws: Workspace) {
        let spool = ws.requestSpool
        guard !spool.isEmpty else { return }
        if spool.trailing > 0, !socket.isClosed {
            let b = inbound.held()
            if b.isEmpty {
                b.clear()
                spool.moveTrailing(to: b)
            }
        }
        spool.release()
    }
}
