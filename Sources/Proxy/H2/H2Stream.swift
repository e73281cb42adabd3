import Glibc
import Runtime

/// One HTTP/2 request stream: what the connection collected for it (head, body bytes not yet
/// sent upstream, response bytes not yet framed), and the waits of its task. The task (see
/// `H2Forward`) is straight-line async code like an HTTP/1.1 request's; it waits here for the
/// client's body and for room in the response queue, and the connection wakes it.
final class H2Stream: TimerNode, @unchecked Sendable {
    private(set) var id: Int32
    private(set) unowned(unsafe) var conn: H2Connection
    var head: H2RequestHead
    /// The client sent END_STREAM: no more body.
    var requestEnded = false
    /// The body goes to the backend chunked (the client gave no content-length).
    var chunked = false
    /// Request body from the client not yet sent to the backend (at most the stream window).
    var bodyIn: [UInt8] = []
    /// Response body not yet framed, from `outStart`; `responseEnded` once the backend's body ended.
    var bodyOut: [UInt8] = []
    var outStart = 0
    var responseEnded = false
    /// The data provider found nothing ready: the task must resume it when it adds bytes.
    var deferred = false
    /// nghttp2 closed the stream (both ends done, or a reset either way).
    var closed = false
    /// A task runs the stream (from its complete head until it is done).
    var running = false
    /// The task is done: request body bytes that still come are given back at once, not kept.
    var discarding = false
    /// The backend connection in use, so a reset can cut its wait short.
    var upstream: UpstreamConnection?
    private var waiter: UnsafeContinuation<Bool, Never>?

    init(id: Int32, conn: H2Connection, maxListSize: Int) {
        self.id = id
        self.conn = conn
        head = H2RequestHead(maxListSize: maxListSize)
    }

    /// This record for a new stream (its buffers keep their storage, up to a bound).
    func reuse(id: Int32, conn: H2Connection) {
        precondition(waiter == nil && !running)
        self.id = id
        self.conn = conn
        head.reset()
        requestEnded = false
        chunked = false
        if bodyIn.capacity > Self.outLimit { bodyIn = [] } else { bodyIn.removeAll(keepingCapacity: true) }
        if bodyOut.capacity > Self.outLimit * 2 { bodyOut = [] } else { bodyOut.removeAll(keepingCapacity: true) }
        outStart = 0
        bytesOut = 0
        responseEnded = false
        deferred = false
        closed = false
        discarding = false
        upstream = nil
    }

    /// Response bytes queued beyond which the task waits for the client to take some.
    static let outLimit = 64 * 1024

    var queuedOut: Int { bodyOut.count - outStart }

    // MARK: Waiting

    /// Waits for `wake` (true) or `deadline` (false).
    nonisolated(nonsending)
    func wait(until deadline: UInt64) async -> Bool {
        assert(EventLoop.shared.ownsCurrentThread, "a stream wait off the loop thread")
        if closed { return false }
        EventLoop.shared.timers.schedule(self, at: deadline)
        return await withUnsafeContinuation { waiter = $0 }
    }

    func wake(_ ok: Bool = true) {
        guard let w = waiter else { return }
        waiter = nil
        EventLoop.shared.timers.remove(self)
        w.resume(returning: ok)
    }

    override func timerFired() { wake(false) }

    /// The stream closed under the task (a reset): its waits end now.
    func closedByPeer() {
        closed = true
        wake(false)
        upstream?.socket.interrupt()
    }

    // MARK: The response queue

    /// Moves queued response bytes into nghttp2's frame buffer; nil when none is ready yet.
    func takeOut(into buf: UnsafeMutableRawBufferPointer) -> (count: Int, end: Bool)? {
        let n = min(buf.count, queuedOut)
        if n == 0 && !responseEnded {
            deferred = true
            return nil
        }
        if n > 0 {
            bodyOut.withUnsafeBytes { buf.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[outStart..<(outStart + n)])) }
            outStart += n
            if outStart == bodyOut.count {
                bodyOut.removeAll(keepingCapacity: true)
                outStart = 0
            }
            if queuedOut <= Self.outLimit / 2 { wake() }  // the task may read more from the backend
        }
        return (n, responseEnded && queuedOut == 0)
    }

    /// Response body bytes queued for the client (its access-log figure).
    var bytesOut = 0

    /// Queues response bytes for the client and tells nghttp2 they are there.
    func queue(_ bytes: UnsafeRawBufferPointer) {
        bodyOut += bytes
        bytesOut += bytes.count
        resumeIfDeferred()
    }

    func endResponse() {
        responseEnded = true
        resumeIfDeferred()
    }

    private func resumeIfDeferred() {
        guard deferred else { return }
        deferred = false
        conn.session.resume(stream: id)
        conn.flush()
    }
}
