import Config
import Glibc
import HTTP1
import Runtime
import TLS

/// One client connection. While a request is in progress a task runs `run()` as straight-line
/// code; between requests the connection parks: the task ends, the buffer goes back to the pool,
/// and what remains is this small record, which the loop wakes when bytes arrive.
final class ClientSession: ParkedHandler, HangupWatcher, @unchecked Sendable {
    let socket = Socket()
    unowned(unsafe) let ctx: ProxyContext  // lives as long as the process
    /// `ctx.stats.clientPhases`, held directly (see `setPhase`).
    let phaseCounts: CounterArray
    unowned(unsafe) var group: UpstreamGroup
    var groupIndex = 0
    var peer = ""
    /// The connection's TLS state on a TLS listener (freed at close, so a closed record holds none).
    var tls: TLSStream?
    /// "Header: subject\r\n" for the verified client certificate, when the listener forwards it
    /// (made once per connection, at the handshake).
    var clientSubjectLine: [UInt8]?
    let inbound: BufferSlot
    var state: ClientConnectionState
    var phase: ClientPhase?
    /// The deadline of the current wait for a request to begin.
    var idleWait: UInt64 = 0
    /// Where the current request ends in the inbound buffer, when all of it is buffered.
    var requestEnd = 0
    var inRequest = false
    /// The client hung up while its request waited on a backend (see `HangupWatcher`).
    var clientHungUp = false
    /// How fast the client reads the current response (see `MinRate`).
    var sendRate = MinRate(bytesPerSecond: 0, grace: 0)
    /// The current response was more than one read: its end may still sit in the kernel's send
    /// queue, so the client's pace is watched after it (see `DrainWatch`).
    var sendRateArmed = false
    /// While a response drains from the kernel: when to look again, and the bytes unsent then.
    var drainCheckAt: UInt64 = 0
    var drainUnsent = 0
    var drainFrom: UInt64 = 0
    /// The upstream connection the current request is using, so a hang-up can interrupt its wait.
    var upstreamInUse: UpstreamConnection?
    /// The request's place in the upstream queue while it waits there.
    var queuedWaiter: Waiter?
    /// The connection ends after one of the proxy's own error answers: read what the client
    /// still sends before closing, so the answer is not lost to a reset (nginx's lingering close).
    var lingerOnClose = false
    /// Bytes written to the client since the last access-log line: the current request's.
    var sentBytes = 0
    /// Set when the backend switched protocols: the tunnel takes the connection over once the
    /// task lets go of it.
    var tunnel: Tunnel?
    /// The listener takes HTTP/2 with prior knowledge: a connection that opens with the HTTP/2
    /// preface becomes an `H2Connection`.
    var priorKnowledge = false
    /// Set while the connection speaks HTTP/2 (so a drain can send it a GOAWAY).
    var h2: H2Connection?
    /// A task is running `run()`; the record is reused only once it has finished and closed.
    var taskRunning = false
    /// Something else still reads the record (an HTTP/2 connection's stream tasks): it is reused
    /// only once that lets go too.
    private var pinned = false

    func pin() { pinned = true }

    func unpin() {
        guard pinned else { return }
        pinned = false
        if closed && !taskRunning { ctx.recycle(self) }
    }
    private(set) var closed = true

    /// A blank record; `start` gives it a connection. Records are allocated in batches and reused
    /// (see `ProxyContext.makeSession`), so the records of idle connections sit densely in memory.
    init(ctx: ProxyContext, group: UpstreamGroup) {
        self.ctx = ctx
        self.group = group
        phaseCounts = ctx.stats.clientPhases
        inbound = BufferSlot(pool: ctx.clientBuffers)
        state = ClientConnectionState(keepAliveTimeout: 0, headerTimeout: 0, parkAfter: 0, maxRequests: 0, now: 0)
    }

    /// Takes on the accepted connection `fd`; false when it could not be registered.
    func start(fd: Int32, peer: String, group: UpstreamGroup, groupIndex: Int, tls tlsContext: TLSServerContext?) -> Bool {
        guard socket.attach(fd: fd) else { return false }
        if let c = tlsContext {
            guard let t = TLSStream(context: c, socket: socket) else {
                socket.close()
                return false
            }
            tls = t
            ctx.tlsStats.open += 1
        }
        self.peer = peer
        self.group = group
        self.groupIndex = groupIndex
        let now = EventLoop.shared.now
        let c = ctx.config
        state = ClientConnectionState(keepAliveTimeout: c.timeouts.keepAlive, headerTimeout: c.timeouts.clientHeader,
                                      parkAfter: c.parkAfter, maxRequests: c.limits.maxKeepAliveRequests, now: now)
        idleWait = state.firstWait(now: now)
        requestEnd = 0
        drainCheckAt = 0
        sendRateArmed = false
        inRequest = false
        clientHungUp = false
        lingerOnClose = false
        sentBytes = 0
        closed = false
        ctx.stats.clientConnections += 1
        ctx.register(self)
        return true
    }

    /// Parked, or waiting for the first byte of a request.
    var isBetweenRequests: Bool { !inRequest && (phase == .idle || (phase == .reading && inbound.isEmpty)) }

    /// Starts the task that serves this connection.
    func spawn() {
        taskRunning = true
        spawnOnLoop { await self.run() }
    }

    func setPhase(_ p: ClientPhase?) {
        // Through the counters' own storage: reaching them through `ctx.stats` would retain and
        // release the stats object around each bump (12 reference-count operations a request).
        if let old = phase { phaseCounts[old.rawValue] -= 1 }
        if let p { phaseCounts[p.rawValue] += 1 }
        phase = p
    }

    func close() {
        setPhase(nil)
        inbound.release()
        guard !closed else { return }
        closed = true
        h2 = nil
        ctx.unregister(self)
        if let t = tls {
            t.shutdown()
            tls = nil
            clientSubjectLine = nil
            ctx.tlsStats.open -= 1
        }
        socket.close()
        ctx.stats.clientConnections -= 1
        if !taskRunning && !pinned { ctx.recycle(self) }
    }

    // MARK: HTTP/2

    /// Hands the connection to an HTTP/2 session, which runs without this task from here.
    private func becomeH2() {
        guard let c = H2Connection(client: self) else { return close() }
        h2 = c
        c.start()
    }

    /// Waits for the first bytes (as for a request head) and tells whether they begin the HTTP/2
    /// client preface; false leaves them for HTTP/1.1.
    nonisolated(nonsending)
    private func opensWithH2Preface() async -> Bool {
        let preface = H2Connection.preface
        while true {
            let have = inbound.buffer?.readable ?? 0
            if have > 0 {
                let b = inbound.buffer!
                let n = min(have, preface.count)
                for i in 0..<n where b.base.load(fromByteOffset: b.readIndex + i, as: UInt8.self) != preface[i] { return false }
                if n == preface.count { return true }
            }
            let deadline = inbound.isEmpty ? idleWait : state.headerDeadline(now: EventLoop.shared.now)
            guard let n = try? await fill(inbound, until: deadline), n > 0 else { return false }
        }
    }

    // MARK: Parked

    func parkedReadable(_ socket: Socket) {
        socket.unpark()
        let now = EventLoop.shared.now
        idleWait = min(now + ctx.config.parkAfter, state.idleDeadline)
        spawn()
    }

    func parkedExpired(_ socket: Socket) { close() }

    // MARK: Hang-up while a request waits

    /// The client hung up (EPOLLRDHUP) while its request waited on a backend: give up the wait
    /// at once (nginx's 499) rather than hold both connections until `upstream_header`.
    func peerHungUp(_ socket: Socket) {
        clientHungUp = true
        upstreamInUse?.socket.interrupt()
        queuedWaiter?.cancel()
    }

    func watchForHangup() {
        clientHungUp = false
        socket.hangupWatcher = self
    }

    func stopWatchingForHangup() {
        socket.hangupWatcher = nil
        clientHungUp = false
        upstreamInUse = nil
    }

    /// Parks the connection (idle keep-alive) or closes it when its idle time is up.
    private func park() {
        switch state.waitExpired(now: EventLoop.shared.now) {
        case .close:
            close()
        case .park(let until):
            inbound.release()
            setPhase(.idle)
            socket.park(self, until: until)
        }
    }

    // MARK: The task

    nonisolated(nonsending)
    func run() async {
        // Held only from a request's first bytes to the end of its response: between requests the
        // workspace goes back to the pool, so thousands of waiting connections hold none, and the
        // pool hands out the most recently used (still in cache) first.
        var held: Workspace?
        defer {
            giveBack(&held)
            taskRunning = false
            if closed && !pinned { ctx.recycle(self) }
        }
        if let t = tls, !t.isEstablished {
            setPhase(.reading)
            guard await t.handshake(until: EventLoop.shared.now + t.context!.settings.handshakeTimeout) else {
                close()
                return
            }
            if let c = t.context, c.forwardsClientSubject, let subject = t.peerSubject() {
                // Bounded to fit its slot in the workspace's staging buffer (see `exchange`), CRLF kept.
                let name = Array(c.settings.clientSubjectHeader.utf8)
                clientSubjectLine = name + Array(": ".utf8) + Array(subject.utf8.prefix(4096 - name.count - 4)) + [13, 10]
            }
            if t.negotiatedH2 { return becomeH2() }
        }
        if priorKnowledge, await opensWithH2Preface() { return becomeH2() }
        while true {
            setPhase(.reading)
            switch await readHead(&held) {
            case .parked, .closed:
                return
            case .head:
                drainCheckAt = 0  // the client is back: the last response's tail is its business
            }
            let ws = held!
            inRequest = true
            let keepAlive = await proxy(ws)
            inRequest = false
            giveBack(&held)
            if let t = tunnel {
                tunnel = nil
                t.start()
                return
            }
            let buffered = !inbound.isEmpty
            if !buffered { inbound.releaseIfEmpty() }
            switch state.responseDone(keepAlive: keepAlive && !socket.isClosed, draining: ctx.draining, buffered: buffered, now: EventLoop.shared.now) {
            case .close:
                if lingerOnClose { await lingerAndClose() } else { close() }
                return
            case .nextBuffered:
                continue
            case .waitNext(let until):
                idleWait = until
                if sendRateArmed { watchDrain() }
            }
        }
    }

    enum HeadOutcome { case head, parked, closed }

    /// The workspace goes back to the pool: after each response, and before an answer that may
    /// linger for seconds (see `lingerAndClose`).
    private func giveBack(_ held: inout Workspace?) {
        if let ws = held { ctx.giveWorkspace(ws) }
        held = nil
    }

    /// A workspace for the request whose first bytes arrived, its parser reset.
    private func takeWorkspace(_ held: inout Workspace?) -> Workspace {
        let ws = ctx.takeWorkspace()
        ws.request.reset()
        held = ws
        return ws
    }

    /// Reads until a whole request head is parsed; answers and closes on bad input or timeout.
    @inline(__always) nonisolated(nonsending)
    private func readHead(_ held: inout Workspace?) async -> HeadOutcome {
        var headDeadline: UInt64 = 0
        var headBegan: UInt64 = 0  // for the access log's line of a refused request
        while true {
            if let buf = inbound.buffer, !buf.isEmpty {
                if headDeadline == 0 {
                    headBegan = EventLoop.shared.now
                    headDeadline = state.headerDeadline(now: headBegan)
                }
                let ws = held ?? takeWorkspace(&held)
                switch ws.request.parse(buf.readableBytes) {
                case .complete:
                    return .head
                case .error(let e):
                    giveBack(&held)
                    await refuse(e.status, since: headBegan)
                    return .closed
                case .needMore:
                    if buf.readIndex > 0 && buf.writableTail < buf.capacity / 4 {
                        // Move the partial head to the front; the parser's offsets are relative to it.
                        buf.compact()
                    }
                }
            }
            let waitingForFirstByte = inbound.isEmpty
            let watching = waitingForFirstByte && drainCheckAt != 0
            do {
                // While a response drains from the kernel the connection does not park (that would
                // end the watch): it waits for its next look, within the keep-alive time.
                let deadline = !waitingForFirstByte ? headDeadline : watching ? min(state.idleDeadline, drainCheckAt) : idleWait
                let n = try await fill(inbound, until: deadline)
                if n == 0 {
                    close()
                    return .closed
                }
            } catch .timedOut {
                // (The timer may fire a hair before the time asked for: only the keep-alive
                // deadline having passed ends the watch.)
                if watching && EventLoop.shared.now < state.idleDeadline {
                    if checkDrain() { continue }
                    return .closed
                }
                if waitingForFirstByte {
                    park()
                    return .parked
                }
                ctx.stats.timedOut(.clientHeader)
                giveBack(&held)
                await respond(Responses.error(408, close: true))
                logAccess(nil, status: 408, started: headBegan)
                close()
                return .closed
            } catch .errno(ENOBUFS) {
                // The head filled the whole buffer without ending.
                giveBack(&held)
                await refuse(HTTPError.headersTooLarge.status, since: headBegan)
                return .closed
            } catch {
                close()
                return .closed
            }
        }
    }

    /// Answers a request refused before its head was whole (malformed, over a limit), then closes.
    nonisolated(nonsending)
    private func refuse(_ status: Int, since began: UInt64) async {
        ctx.stats.badRequestsTotal += 1
        await respond(Responses.error(status, close: true))
        logAccess(nil, status: status, started: began)
        await lingerAndClose()
    }

    /// Closes after an error answer the way nginx's lingering close does: send our FIN, then read
    /// and discard what the client still sends (up to `lingerIdle` between reads and
    /// `lingerTotal` in all), so closing with unread bytes does not reset the connection and
    /// destroy the answer before the client reads it.
    nonisolated(nonsending)
    func lingerAndClose() async {
        lingerOnClose = false
        guard !closed, !socket.isClosed else { return close() }
        if tls == nil { socket.shutdownWrite() }
        let now = EventLoop.shared.now
        let end = now + Self.lingerTotal
        inbound.release()
        setPhase(.reading)
        while true {
            let deadline = min(end, EventLoop.shared.now + Self.lingerIdle)
            guard let n = try? await fill(inbound, until: deadline), n > 0 else { break }
            inbound.release()  // discarded; no buffer is held while waiting
            if EventLoop.shared.now >= end { break }
        }
        close()
    }

    static let lingerIdle: UInt64 = 1_000_000_000
    static let lingerTotal: UInt64 = 5_000_000_000

    /// Sends one of the proxy's own responses (best effort).
    nonisolated(nonsending)
    func respond(_ bytes: [UInt8]) async {
        setPhase(.writing)
        let deadline = EventLoop.shared.now + ctx.config.timeouts.clientSend
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 1)
        defer { copy.deallocate() }
        copy.copyBytes(from: bytes)
        do {
            try await send(UnsafeRawBufferPointer(copy), until: deadline)
        } catch {
            close()
        }
    }
}
