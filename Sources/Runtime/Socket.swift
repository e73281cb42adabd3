import CLinux
import Glibc

/// What owns a socket while no task waits on it: an idle keep-alive client or a pooled upstream.
/// This is why an idle connection costs a small record and not a suspended task.
public protocol HangupWatcher: AnyObject {
    func peerHungUp(_ socket: Socket)
}

public protocol ParkedHandler: AnyObject {
    /// Bytes (or EOF) arrived while parked.
    func parkedReadable(_ socket: Socket)
    /// The socket's deadline passed while parked.
    func parkedExpired(_ socket: Socket)
    /// Room to write appeared while parked (only a tunnel, which waits on both sides, asks).
    func parkedWritable(_ socket: Socket)
}

extension ParkedHandler {
    public func parkedWritable(_ socket: Socket) {}
}

/// A non-blocking socket registered with the loop (edge-triggered, registered once for both
/// directions, so waiting costs no epoll_ctl). Operations try the syscall first and suspend only on
/// EAGAIN; the one deadline of the socket bounds every wait.
public final class Socket: TimerNode, @unchecked Sendable {
    public private(set) var fd: Int32 = -1
    var generation: UInt32 = 0
    private var readWaiter: UnsafeContinuation<Bool, Never>?
    private var writeWaiter: UnsafeContinuation<Bool, Never>?
    /// The other socket of a wait shared by two (`waitReadable(orWritable:)`), which holds the
    /// same continuation: whichever is resumed first clears the other's copy.
    private var partner: Socket?
    /// Set while parked: told about readiness and expiry instead of a waiting task.
    public var parked: (any ParkedHandler)?
    /// Told when the peer hangs up (EPOLLRDHUP/HUP/ERR) while nobody reads: a client that leaves
    /// while its request waits on a backend is noticed at once, not when the backend answers.
    public var hangupWatcher: (any HangupWatcher)?
    /// The peer hung up or the socket errored (EPOLLRDHUP/HUP/ERR seen).
    public internal(set) var peerClosed = false
    public private(set) var isClosed = false
    /// False once a read came back short or with EAGAIN, until epoll reports new bytes: with
    /// edge-triggered epoll that is exactly when a read could find something, so we skip the
    /// read that would only say EAGAIN.
    public private(set) var mayRead = true

    /// Wraps and registers `fd`; nil when epoll refuses it (the fd is then closed).
    public convenience init?(fd: Int32) {
        self.init()
        guard attach(fd: fd) else { return nil }
    }

    /// A closed socket object, to be given an fd with `attach`. Records that live as long as a
    /// connection are allocated in batches and reused, so idle connections pack densely in memory.
    public override init() {
        super.init()
        isClosed = true
    }

    /// Gives this (closed) object a new fd and registers it; false (and the fd closed) when epoll refuses.
    public func attach(fd: Int32) -> Bool {
        precondition(isClosed && readWaiter == nil && writeWaiter == nil)
        self.fd = fd
        isClosed = false
        mayRead = true
        peerClosed = false
        parked = nil
        hangupWatcher = nil
        generation = EventLoop.shared.register(fd: fd, socket: self)
        if generation == 0 {
            isClosed = true
            Glibc.close(fd)
            return false
        }
        return true
    }

    /// Moves this open, idle socket's fd into `other` (a closed record) without closing it, and
    /// leaves this object closed. Lets a long-lived connection move into a densely allocated record.
    public func transfer(to other: Socket) -> Bool {
        precondition(!isClosed && readWaiter == nil && writeWaiter == nil && other.isClosed)
        let gen = EventLoop.shared.retag(fd: fd, to: other)
        guard gen != 0 else { return false }
        EventLoop.shared.timers.remove(self)
        other.fd = fd
        other.generation = gen
        other.isClosed = false
        other.mayRead = mayRead
        other.peerClosed = peerClosed
        other.parked = nil
        isClosed = true
        parked = nil
        fd = -1
        return true
    }

    /// A read made by someone else on this fd (OpenSSL) came back short or with EAGAIN: like
    /// `readNow`, remember that only new readiness can make a read worth making.
    public func noteDrained() { if !peerClosed { mayRead = false } }

    // MARK: Loop callbacks

    func readReady() {
        mayRead = true
        if let w = readWaiter {
            readWaiter = nil
            detachPartner()
            w.resume(returning: true)
        } else if let p = parked {
            p.parkedReadable(self)
        }
    }

    func writeReady() {
        if let w = writeWaiter {
            writeWaiter = nil
            detachPartner()
            w.resume(returning: true)
        } else if let p = parked {
            p.parkedWritable(self)
        }
    }

    /// A shared wait ends: the partner's copy of the continuation must not be resumed again.
    private func detachPartner() {
        guard let p = partner else { return }
        p.readWaiter = nil
        p.writeWaiter = nil
        p.partner = nil
        partner = nil
    }

    public override func timerFired() {
        if readWaiter != nil || writeWaiter != nil {
            let r = readWaiter, w = writeWaiter
            readWaiter = nil
            writeWaiter = nil
            detachPartner()
            r?.resume(returning: false)
            w?.resume(returning: false)
        } else if let p = parked {
            p.parkedExpired(self)
        }
    }

    // MARK: Deadlines and parking

    /// Sets the one deadline of this socket (0: none).
    public func setDeadline(_ deadline: UInt64) {
        EventLoop.shared.timers.schedule(self, at: deadline)
    }

    /// Hands the socket to `handler` until it becomes readable or `deadline` passes.
    public func park(_ handler: any ParkedHandler, until deadline: UInt64) {
        parked = handler
        setDeadline(deadline)
    }

    public func unpark() { parked = nil }

    // MARK: Waiting

    /// Waits until readable; false when the deadline passed or the socket closed.
    nonisolated(nonsending)
    public func waitReadable(until deadline: UInt64) async -> Bool {
        // Waits run on their caller's executor: only loop tasks may wait (checked in debug builds).
        assert(EventLoop.shared.ownsCurrentThread, "a socket wait off the loop thread")
        if isClosed { return false }
        setDeadline(deadline)
        return await withUnsafeContinuation { readWaiter = $0 }
    }

    nonisolated(nonsending)
    public func waitWritable(until deadline: UInt64) async -> Bool {
        // Waits run on their caller's executor: only loop tasks may wait (checked in debug builds).
        assert(EventLoop.shared.ownsCurrentThread, "a socket wait off the loop thread")
        if isClosed { return false }
        setDeadline(deadline)
        return await withUnsafeContinuation { writeWaiter = $0 }
    }

    /// Waits until this socket is readable or `other` is writable, whichever comes first: a relay
    /// with bytes to move both ways waits for the first side that can move. False when either
    /// deadline passed or either socket closed.
    nonisolated(nonsending)
    public func waitReadable(orWritable other: Socket, until deadline: UInt64, otherUntil: UInt64) async -> Bool {
        // Waits run on their caller's executor: only loop tasks may wait (checked in debug builds).
        assert(EventLoop.shared.ownsCurrentThread, "a socket wait off the loop thread")
        if isClosed || other.isClosed { return false }
        setDeadline(deadline)
        other.setDeadline(otherUntil)
        return await withUnsafeContinuation { c in
            readWaiter = c
            other.writeWaiter = c
            partner = other
            other.partner = self
        }
    }

    /// Wakes the tasks waiting on this socket as if its deadline had passed; the socket stays
    /// open. For giving up a wait for a reason the socket does not know (the client left).
    public func interrupt() {
        let r = readWaiter, w = writeWaiter
        readWaiter = nil
        writeWaiter = nil
        detachPartner()
        r?.resume(returning: false)
        w?.resume(returning: false)
    }

    // MARK: I/O

    /// Reads what is there now: >0 bytes, 0 on EOF, nil when it would block.
    public func readNow(_ into: UnsafeMutableRawBufferPointer) throws(IOError) -> Int? {
        while true {
            // recv, not read: it goes straight to the socket layer, skipping the VFS checks read makes.
            let n = Glibc.recv(fd, into.baseAddress, into.count, 0)
            if n >= 0 {
                // A short read drains the socket, unless the peer's FIN (or RST) came with the last
                // bytes: edge-triggered epoll reports that once, so the EOF must be read now.
                if n > 0 && n < into.count && !peerClosed { mayRead = false }
                return n
            }
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK {
                mayRead = false
                return nil
            }
            throw .errno(e)
        }
    }

    /// Called by the loop when epoll reports the peer gone (before the read readiness).
    func hangupReported() {
        peerClosed = true
        if readWaiter == nil && parked == nil, let w = hangupWatcher { w.peerHungUp(self) }
    }

    /// Reads at least one byte (or EOF as 0), waiting until `deadline`.
    nonisolated(nonsending)
    public func read(into: UnsafeMutableRawBufferPointer, until deadline: UInt64) async throws(IOError) -> Int {
        while true {
            if isClosed { throw .closed }
            if mayRead, let n = try readNow(into) { return n }
            guard await waitReadable(until: deadline) else { throw isClosed ? .closed : .timedOut }
        }
    }

    /// Bytes written that the peer has not acknowledged yet (the kernel's send queue): what a
    /// slow reader has not taken, however large the kernel let the buffer grow.
    public var unsentBytes: Int { isClosed ? 0 : max(0, Int(gh_unsent_bytes(fd))) }

    /// Writes as much as the kernel takes now; nil when it would block.
    public func writeNow(_ bytes: UnsafeRawBufferPointer) throws(IOError) -> Int? {
        while true {
            let n = Glibc.send(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL))
            if n >= 0 { return n }
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return nil }
            throw .errno(e)
        }
    }

    /// Writes all of `bytes`: write first, wait for EPOLLOUT only after a short write.
    nonisolated(nonsending)
    public func write(_ bytes: UnsafeRawBufferPointer, until deadline: UInt64) async throws(IOError) {
        var offset = 0
        while offset < bytes.count {
            if isClosed { throw .closed }
            if let n = try writeNow(UnsafeRawBufferPointer(rebasing: bytes[offset...])) {
                offset += n
            } else if !(await waitWritable(until: deadline)) {
                throw isClosed ? .closed : .timedOut
            }
        }
    }

    /// writev by sendmsg, which goes straight to the socket layer (read/writev pass the VFS checks
    /// first); MSG_NOSIGNAL makes a write to a reset peer an EPIPE, never a signal.
    func send(vecs: UnsafeMutablePointer<iovec>, count: Int) -> Int {
        var msg = msghdr()
        msg.msg_iov = vecs
        msg.msg_iovlen = count
        return Glibc.sendmsg(fd, &msg, Int32(MSG_NOSIGNAL))
    }

    /// Writes `a` then `b` with writev, so a rewritten head and the body bytes after it go out in one call.
    nonisolated(nonsending)
    public func write(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer, until deadline: UInt64) async throws(IOError) {
        if b.isEmpty { return try await write(a, until: deadline) }
        var iov = (iovec(iov_base: UnsafeMutableRawPointer(mutating: a.baseAddress), iov_len: a.count),
                   iovec(iov_base: UnsafeMutableRawPointer(mutating: b.baseAddress), iov_len: b.count))
        let total = a.count + b.count
        var n = 0
        while true {
            if isClosed { throw .closed }
            n = withUnsafeMutablePointer(to: &iov) { $0.withMemoryRebound(to: iovec.self, capacity: 2) { send(vecs: $0, count: 2) } }
            if n >= 0 { break }
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK {
                guard await waitWritable(until: deadline) else { throw isClosed ? .closed : .timedOut }
                continue
            }
            throw .errno(e)
        }
        if n == total { return }
        if n < a.count {
            try await write(UnsafeRawBufferPointer(rebasing: a[n...]), until: deadline)
            try await write(b, until: deadline)
        } else {
            try await write(UnsafeRawBufferPointer(rebasing: b[(n - a.count)...]), until: deadline)
        }
    }

    /// Whether an idle connection is still quiet and open, asked of the kernel without waiting
    /// (a one-byte `MSG_PEEK`, as nginx and Pingora test a pooled connection before reuse). EOF,
    /// unread bytes (the peer is out of step) or an error all mean it must not carry a request.
    /// Catches the close that epoll has reported but the loop has not yet handled, and the FIN
    /// that came with the last response bytes (whose edge was consumed by that read).
    public func isIdleAndOpen() -> Bool {
        if isClosed || peerClosed { return false }
        var byte: UInt8 = 0
        while true {
            let n = Glibc.recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
            if n >= 0 { return false }
            let e = errno
            if e == EINTR { continue }
            return e == EAGAIN || e == EWOULDBLOCK
        }
    }

    // MARK: Closing

    /// Closes the fd now; a waiting task sees `.closed`.
    public func close() {
        guard !isClosed else { return }
        isClosed = true
        parked = nil
        hangupWatcher = nil
        EventLoop.shared.timers.remove(self)
        EventLoop.shared.unregister(fd: fd)
        Glibc.close(fd)
        let r = readWaiter, w = writeWaiter
        readWaiter = nil
        writeWaiter = nil
        detachPartner()
        r?.resume(returning: false)
        w?.resume(returning: false)
    }

    /// Sends a FIN but keeps reading possible.
    public func shutdownWrite() { _ = Glibc.shutdown(fd, Int32(SHUT_WR)) }

    /// Closes with an RST (SO_LINGER 0): for connections whose state we no longer trust.
    public func abort() {
        var l = linger(l_onoff: 1, l_linger: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
        close()
    }
}
