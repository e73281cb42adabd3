import Glibc
import Runtime

/// Where a connection's inbound bytes live. A buffer is taken from the pool only while it holds
/// bytes: it is given back as soon as it is empty and the socket would block, so a connection that
/// waits (for a slow backend, or for its next request) holds no buffer.
final class BufferSlot: @unchecked Sendable {
    var buffer: IOBuffer?
    unowned(unsafe) let pool: BufferPool  // lives as long as the process

    init(pool: BufferPool) { self.pool = pool }

    var isEmpty: Bool { buffer?.isEmpty ?? true }

    /// The slot's buffer, taken from the pool when it holds none.
    func held() -> IOBuffer {
        if let b = buffer { return b }
        let b = pool.take()
        buffer = b
        return b
    }

    /// Reads once from `socket` (waiting until `deadline`), appending to the buffer; 0 means EOF.
    @inline(__always) nonisolated(nonsending)
    func fill(from socket: Socket, until deadline: UInt64) async throws(IOError) -> Int {
        while true {
            if socket.mayRead {
                let buf = held()
                if buf.writableTail == 0 { buf.compact() }
                // A full buffer would turn read(fd, p, 0) into a false EOF.
                if buf.writableTail == 0 { throw .errno(ENOBUFS) }
                if let n = try socket.readNow(buf.tail) {
                    buf.writeIndex += n
                    return n
                }
                releaseIfEmpty()
            }
            guard await socket.waitReadable(until: deadline) else { throw socket.isClosed ? .closed : .timedOut }
        }
    }

    /// Gives the buffer back when nothing is left in it.
    func releaseIfEmpty() {
        if let b = buffer, b.isEmpty {
            pool.give(b)
            buffer = nil
        }
    }

    /// Gives the buffer back whatever it holds (the connection is closing).
    func release() {
        if let b = buffer {
            pool.give(b)
            buffer = nil
        }
    }
}
