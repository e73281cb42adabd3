import Config
import Glibc
import Runtime

/// A worker's side of the access log. Each request's line is formatted straight into bytes and
/// put in a bounded ring (`access_log ... buffer=`, 1 MiB by default); the ring goes to the
/// supervisor, which writes the file, as datagrams of whole lines on a non-blocking unix socket:
/// when a batch (64 KiB) fills, or 100 ms after the oldest line waiting was written, so a busy
/// worker pays one send for hundreds of lines (handing over each loop turn cost 8-18% of the CPU
/// per request at 64 connections, a send and the supervisor's receive and write for a few
/// lines). A worker killed outright loses at most those 100 ms of lines. Nothing here ever
/// blocks the loop: when the socket is full (the supervisor is behind or stopped) the lines wait
/// in the ring and the next try is on a short timer; when the ring is full a line is dropped and
/// counted (`gatehouse_access_log_dropped_total`).
final class AccessLog: TimerNode {
    static let batchBytes = AccessLogSettings.datagramBytes
    /// The longest line: the target's 2 KiB escaped six-fold in JSON, and the rest.
    static let lineBytes = 16 * 1024
    /// How long lines wait in the ring after the socket was found full before the next try.
    static let retryAfter: UInt64 = 10_000_000
    /// The longest a line waits in the ring before it is handed over (when the socket has room).
    static let flushAfter: UInt64 = 100_000_000

    let format: AccessLogSettings.Format
    let ring: LineRing
    private let fd: Int32
    private let line = UnsafeMutableRawBufferPointer.allocate(byteCount: AccessLog.lineBytes, alignment: 16)
    private let clock = LogClock()
    /// The socket was full: no try before the timer fires.
    private var waiting = false
    /// The timer is set (for `flushAfter` or `retryAfter`).
    private var scheduled = false

    /// `fd`: the sending end of the supervisor's socket pair, handed to this worker.
    init(fd: Int32, settings: AccessLogSettings) {
        self.fd = fd
        format = settings.format
        ring = LineRing(capacity: max(settings.buffer, Self.batchBytes))
        super.init()
    }

    deinit { line.deallocate() }

    /// Formats `entry` (stamped with the time now) into the ring; hands the ring over once it
    /// holds a batch.
    func write(_ entry: AccessEntry) {
        clock.now()
        var w = LineWriter(line)
        entry.write(format, into: &w, clock: clock)
        ring.append(w.finish())
        // Half a small ring is a batch too: a ring no larger than a datagram never holds a whole one.
        if ring.count >= min(Self.batchBytes, ring.capacity / 2) { flush() }
        if !ring.isEmpty && !scheduled { schedule(after: Self.flushAfter) }
    }

    /// From the clock, not the turn's cached time: from within `timerFired` a deadline already
    /// past would fire again in the same pass, and again.
    private func schedule(after delay: UInt64) {
        scheduled = true
        EventLoop.shared.timers.schedule(self, at: monotonicNanos() + delay)
    }

    /// Sends what the ring holds, a datagram a batch, until it is empty or the socket is full.
    func flush() {
        while !waiting && !ring.isEmpty {
            let (a, b) = ring.front(max: Self.batchBytes)
            switch send(a, b) {
            case .sent: ring.consume(a.count + b.count)
            case .full:
                waiting = true
                schedule(after: Self.retryAfter)
            case .gone:
                ring.discardAll()  // the supervisor is gone: nobody will read these
            }
        }
    }

    override func timerFired() {
        waiting = false
        scheduled = false
        flush()
        if !ring.isEmpty && !scheduled { schedule(after: Self.flushAfter) }
    }

    /// At the end of the worker's life: sends what is left, waiting for room up to `patience` ns
    /// (the loop has stopped, so blocking here holds up no request).
    func finish(patience: UInt64 = 1_000_000_000) {
        EventLoop.shared.timers.remove(self)
        scheduled = false
        let end = monotonicNanos() + patience
        while true {
            waiting = false
            flush()
            let now = monotonicNanos()
            guard waiting, now < end else { return }
            var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            _ = poll(&p, 1, Int32((end - now) / 1_000_000 + 1))
        }
    }

    private enum SendResult { case sent, full, gone }

    /// One datagram of the two spans, without waiting.
    private func send(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> SendResult {
        var iov = (iovec(iov_base: UnsafeMutableRawPointer(mutating: a.baseAddress), iov_len: a.count),
                   iovec(iov_base: UnsafeMutableRawPointer(mutating: b.baseAddress), iov_len: b.count))
        while true {
            let n = withUnsafeMutablePointer(to: &iov) { p in
                p.withMemoryRebound(to: iovec.self, capacity: 2) { v in
                    var msg = msghdr()
                    msg.msg_iov = v
                    msg.msg_iovlen = b.isEmpty ? 1 : 2
                    return sendmsg(fd, &msg, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
                }
            }
            if n >= 0 { return .sent }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK, ENOBUFS: return .full
            default: return .gone
            }
        }
    }
}
