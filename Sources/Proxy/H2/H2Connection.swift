import CNghttp2
import Glibc
import Runtime

/// An HTTP/2 client connection (ALPN h2, or prior knowledge on a cleartext listener with
/// `http2 on`). Like a tunnel it runs no task of its own: its socket is parked with the connection
/// as handler, and each readiness feeds what arrived to nghttp2 and writes what nghttp2 has to
/// send. Each request stream runs its own task (`H2Forward`), so a stream waiting on a slow
/// backend holds up no other; an idle connection holds no task and no buffer.
final class H2Connection: ParkedHandler, H2SessionDelegate, TurnEndHandler, @unchecked Sendable {
    unowned(unsafe) let ctx: ProxyContext
    let client: ClientSession
    private(set) var session: H2Session!
    private var streams: [Int32: H2Stream] = [:]
    /// Frame bytes gathered from nghttp2 (whose output is valid only until its next call) and not
    /// yet taken by the socket, from `outStart`.
    private var out: [UInt8] = []
    private var outStart = 0
    private var flushQueued = false
    private var ended = false
    private var flushing = false
    /// Inside nghttp2's mem_recv (its callbacks may not make it send): the flush waits for its end.
    private var receiving = false
    private var goingAway = false
    private var lingering = false
    private var goneAwayAt: UInt64 = 0
    /// The last stream the GOAWAY said would be processed: later ones are refused, never forwarded
    /// (the client may send them again elsewhere).
    private var lastStreamID: Int32 = .max
    /// Protocol misbehaviour (invalid frames, empty DATA): 100 at once, or more than 10 a second
    /// for long, gets a GOAWAY.
    private var misbehaviour = LeakyBucket(limit: 100, perSecond: 10)
    private var running = 0
    private var served = 0
    private var lastActivity: UInt64

    init?(client: ClientSession) {
        self.client = client
        ctx = client.ctx
        lastActivity = EventLoop.shared.now
        let c = ctx.config
        guard let s = H2Session(delegate: self, limits: .init(maxConcurrentStreams: c.limits.h2MaxConcurrentStreams, maxHeaderListSize: c.limits.maxHeaderBytes)) else { return nil }
        session = s
    }

    /// Takes the connection over; bytes already read (the preface, for prior knowledge) go first.
    func start() {
        ctx.stats.h2ConnectionsOpen += 1
        ctx.stats.h2ConnectionsTotal += 1
        client.setPhase(.h2)
        client.pin()  // stream tasks read it until the last one is done
        if let b = client.inbound.buffer, !b.isEmpty {
            receiving = true
            let ok = session.receive(b.readableBytes)
            receiving = false
            b.readIndex = b.writeIndex
            client.inbound.releaseIfEmpty()
            if !ok {
                // The GOAWAY nghttp2 queued goes out at the turn's end; the session is then over
                // and `writeOut` lingers and closes (closing here would drop it).
                park()
                return flush()
            }
        }
        pump()
    }

    // MARK: Readiness

    func parkedReadable(_ socket: Socket) { pump() }
    func parkedWritable(_ socket: Socket) { if outStart < out.count { writeOut() } }

    func parkedExpired(_ socket: Socket) {
        if lingering { return finish() }
        // Gone away and still not done by the hard stop (a client that does not read, streams
        // whose head never ended): close.
        if goingAway { return finish() }
        guard running == 0 else { return }
        if EventLoop.shared.now >= lastActivity + idleLimit {
            goAway(code: UInt32(NGHTTP2_NO_ERROR.rawValue))
        } else {
            park()
        }
    }

    /// Reads what arrived and hands it to nghttp2, then writes what it has to send.
    func pump() {
        guard !ended else { return }
        if lingering { return discardInput() }
        do throws(IOError) {
            while client.mayReceive {
                guard let bytes = try readOnce() else { break }
                if bytes.isEmpty {
                    client.inbound.release()
                    return finish()
                }
                lastActivity = EventLoop.shared.now
                receiving = true
                let ok = session.receive(bytes)
                receiving = false
                if ended { return client.inbound.release() }
                if !ok { break }
            }
        } catch {
            client.inbound.release()
            return finish()
        }
        client.inbound.release()
        park()
        flush()
    }

    /// Asks for a write at the end of this loop turn: the frames of every stream that moved in
    /// the turn go out together, in as few TLS records and syscalls as the socket allows.
    func flush() {
        guard !ended, !flushQueued else { return }
        flushQueued = true
        EventLoop.shared.callAtTurnEnd(self)
    }

    func turnEnded() {
        flushQueued = false
        writeOut()
    }

    /// Gathers nghttp2's output (up to `gatherLimit` at a time) and writes it, until the socket is
    /// full or nothing is due; ends the connection when the session is over.
    private func writeOut() {
        guard !ended, !flushing, !receiving else { return }
        flushing = true
        defer { flushing = false }
        do throws(IOError) {
            while true {
                if outStart == out.count {
                    out.removeAll(keepingCapacity: true)
                    outStart = 0
                    while out.count < Self.gatherLimit {
                        guard let chunk = session.output() else { return finish() }
                        if chunk.isEmpty { break }
                        out += chunk
                    }
                    if out.isEmpty { break }
                }
                var n = 0
                var failure: IOError?
                out.withUnsafeBytes { p in
                    do throws(IOError) { n = try client.sendNow(UnsafeRawBufferPointer(rebasing: p[outStart...])) } catch { failure = error }
                }
                if let failure { throw failure }
                outStart += n
                // Nothing taken: the socket is full, on with it when writable. (A short write is
                // not enough to know: TLS returns after each record.)
                if n == 0 { break }
            }
        } catch {
            return finish()
        }
        if outStart == out.count && out.capacity > Self.gatherLimit * 2 { out = [] }
        if !session.isAlive && outStart == out.count { return linger() }
        park()
    }

    /// The session is over (its GOAWAY went out): our FIN, then what the client still sends is read
    /// and dropped for a moment before the close, so a close with unread bytes (a reset) does not
    /// destroy the GOAWAY before the client reads it (as HTTP/1.1's lingering close).
    private func linger() {
        guard !lingering else { return }
        lingering = true
        client.tls?.shutdown()
        client.socket.shutdownWrite()
        client.socket.parked = self
        client.socket.setDeadline(EventLoop.shared.now + 1_000_000_000)
        discardInput()
    }

    /// Lingering: reads and drops; the client's FIN (or an error) ends it.
    private func discardInput() {
        do throws(IOError) {
            while client.mayReceive, let bytes = try readOnce(), !bytes.isEmpty {}
            client.inbound.release()
            if client.socket.peerClosed { finish() }
        } catch {
            client.inbound.release()
            finish()
        }
    }

    static let gatherLimit = 32 * 1024

    /// One read into the inbound buffer: the bytes (empty at the client's end), or nil when
    /// nothing is there.
    private func readOnce() throws(IOError) -> UnsafeRawBufferPointer? {
        let b = client.inbound.held()
        b.clear()
        guard let n = try client.receiveNow(into: b.tail) else { return nil }
        return UnsafeRawBufferPointer(start: b.base, count: n)
    }

    /// How long the connection may sit with no stream running: `client_header` before its first
    /// request, `keepalive` after.
    private var idleLimit: UInt64 { served == 0 ? ctx.config.timeouts.clientHeader : ctx.config.timeouts.keepAlive }

    private func park() {
        client.socket.parked = self
        if goingAway {
            // The streams open have `drain` to finish, the GOAWAY `client_send` to go out.
            client.socket.setDeadline(goneAwayAt + (running > 0 ? ctx.config.timeouts.drain : ctx.config.timeouts.clientSend))
            return
        }
        client.socket.setDeadline(running == 0 ? lastActivity + idleLimit : 0)
    }

    /// A GOAWAY: no new streams; the connection closes once it is sent and the streams open are
    /// done (`writeOut` sees the session over), or at the hard stop (`park`).
    func goAway(code: UInt32) {
        guard !goingAway, !ended else { return }
        goingAway = true
        goneAwayAt = EventLoop.shared.now
        lastStreamID = session.goAway(code: code)
        park()
        flush()
    }

    /// Draining: a GOAWAY now, the close once the open streams are done.
    func drain() { goAway(code: UInt32(NGHTTP2_NO_ERROR.rawValue)) }

    /// Closes the client connection; streams still running see their stream closed.
    func finish() {
        guard !ended else { return }
        ended = true
        ctx.stats.h2ConnectionsOpen -= 1
        for s in streams.values { s.closedByPeer() }
        ctx.stats.h2StreamsOpen -= streams.count
        streams.removeAll()
        out = []
        client.close()
        if running == 0 { client.unpin() }
    }

    /// The client connection preface (RFC 9113 §3.4) that opens HTTP/2 with prior knowledge.
    static let preface: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    // MARK: Streams

    func streamFinished(_ s: H2Stream) {
        running -= 1
        // Body bytes no backend will take: back to the client's windows.
        s.discarding = true
        session.discarded(stream: s.id, s.bodyIn.count, streamOpen: !s.closed)
        s.bodyIn.removeAll(keepingCapacity: true)
        served += 1
        lastActivity = EventLoop.shared.now
        if s.closed, streams.removeValue(forKey: s.id) != nil {
            ctx.stats.h2StreamsOpen -= 1
            recycle(s)
        }
        if ended && running == 0 { client.unpin() }
        flush()
    }

    // MARK: H2SessionDelegate

    func h2Begin(stream: Int32) {
        guard !ended else { return }
        let s: H2Stream
        if let spare = ctx.h2SpareStreams.popLast() {
            spare.reuse(id: stream, conn: self)
            s = spare
        } else {
            s = H2Stream(id: stream, conn: self, maxListSize: ctx.config.limits.maxHeaderBytes)
        }
        streams[stream] = s
        ctx.stats.h2StreamsOpen += 1
        ctx.stats.h2StreamsTotal += 1
    }

    func h2Field(stream: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> Bool {
        streams[stream]?.head.add(name: name, value: value) ?? true
    }

    func h2HeadDone(stream: Int32, ended: Bool) {
        guard !self.ended, let s = streams[stream], !s.running else { return }
        // After a GOAWAY's last stream, or with as many tasks running as streams may be open (a
        // client can make nghttp2 close streams at once, "MadeYouReset", while their tasks and
        // backend requests go on): refused, never forwarded.
        if stream > lastStreamID || running >= ctx.config.limits.h2MaxConcurrentStreams {
            session.reset(stream: stream, code: UInt32(NGHTTP2_REFUSED_STREAM.rawValue))
            return
        }
        s.requestEnded = ended
        s.running = true
        running += 1
        spawnOnLoop { await H2Forward(stream: s, conn: self).run() }
    }

    func h2Data(stream: Int32, _ bytes: UnsafeRawBufferPointer) {
        guard let s = streams[stream] else { return session.discarded(stream: stream, bytes.count, streamOpen: false) }
        if s.discarding { return session.discarded(stream: stream, bytes.count, streamOpen: true) }
        s.bodyIn += bytes
        s.wake()
    }

    func h2BodyEnded(stream: Int32) {
        guard let s = streams[stream] else { return }
        s.requestEnded = true
        s.wake()
    }

    func h2Closed(stream: Int32, error: UInt32) {
        guard let s = streams[stream] else { return }
        if error != 0 || !s.responseEnded { s.closedByPeer() } else { s.closed = true }
        if !s.running {
            session.discarded(stream: stream, s.bodyIn.count, streamOpen: false)
            streams[stream] = nil
            ctx.stats.h2StreamsOpen -= 1
            recycle(s)
        }
    }

    /// A finished stream's record goes back for reuse (a few hundred at most are kept).
    private func recycle(_ s: H2Stream) {
        if ctx.h2SpareStreams.count < 256 { ctx.h2SpareStreams.append(s) }
    }

    func h2Misbehaved() {
        ctx.stats.h2Misbehaviour += 1
        if misbehaviour.add(now: EventLoop.shared.now) { goAway(code: UInt32(NGHTTP2_ENHANCE_YOUR_CALM.rawValue)) }
    }

    func h2ResponseBytes(stream: Int32, into: UnsafeMutableRawBufferPointer) -> (count: Int, end: Bool)? {
        guard let s = streams[stream] else { return (0, true) }
        return s.takeOut(into: into)
    }

    func h2SentGoAway(code: UInt32) {
        ctx.stats.h2GoAwaysSent[ProxyStats.GoAwayReason(code: code).rawValue] += 1
    }
}
