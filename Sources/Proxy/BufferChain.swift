import Runtime

/// Bytes held in a short list of pool buffers: written in at the tail, taken out at the front.
/// A request body read before a backend is leased, and a response read ahead of a slow client,
/// live in one; each buffer goes back to its pool as soon as it is empty, so memory follows
/// what is held, and a connection between requests holds none.
final class BufferChain {
    unowned(unsafe) let pool: BufferPool  // lives as long as the process
    private(set) var buffers: [IOBuffer] = []
    /// Bytes at the end of the last buffer that are not part of the message (pipelined bytes
    /// that arrived after a request body): kept apart, never sent with it.
    var trailing = 0

    init(pool: BufferPool) {
        self.pool = pool
        buffers.reserveCapacity(16)
    }

    var isEmpty: Bool { buffers.isEmpty }

    /// Pool memory held: what the size limits count.
    var capacity: Int { buffers.count * pool.bufferSize }

    /// Free room at the end of the last buffer.
    var tailRoom: Int { buffers.last?.writableTail ?? 0 }

    /// Where the next bytes go (the last buffer's free tail); call `grow` first when it is full.
    var tail: UnsafeMutableRawBufferPointer { buffers.last!.tail }

    /// Takes a buffer from the pool for the tail.
    func grow() { buffers.append(pool.take()) }

    /// Takes `buffer` (of the same pool) as the new tail, its unread bytes with it.
    func adopt(_ buffer: IOBuffer) {
        if buffer.isEmpty { buffer.clear() }
        buffers.append(buffer)
    }

    /// `n` bytes were written at the tail.
    func wrote(_ n: Int) { buffers[buffers.count - 1].writeIndex += n }

    /// The message bytes of buffer `i`.
    func span(_ i: Int) -> UnsafeRawBufferPointer {
        let b = buffers[i]
        let end = i == buffers.count - 1 ? b.writeIndex - trailing : b.writeIndex
        return UnsafeRawBufferPointer(start: b.base + b.readIndex, count: end - b.readIndex)
    }

    /// The first message bytes (empty when none are held). Emptied buffers ahead of them go
    /// back to the pool first.
    var front: UnsafeRawBufferPointer {
        while buffers.count > 1 && buffers[0].isEmpty { pool.give(buffers.removeFirst()) }
        return buffers.isEmpty ? UnsafeRawBufferPointer(start: nil, count: 0) : span(0)
    }

    /// Adds every message span to a gather list.
    func addSpans(to iov: IOVecList) {
        for i in buffers.indices {
            let s = span(i)
            if s.count > 0 { iov.add(s.baseAddress!, s.count) }
        }
    }

    /// Drops `n` bytes from the front; emptied buffers go back to the pool, except the last,
    /// which is cleared for reuse.
    func consume(_ n: Int) {
        var left = n
        while left > 0, let b = buffers.first {
            let take = min(left, b.readable)
            b.readIndex += take
            left -= take
            guard b.isEmpty else { break }
            if buffers.count == 1 { break }
            pool.give(buffers.removeFirst())
        }
        if buffers.count == 1 && buffers[0].isEmpty { buffers[0].clear() }
    }

    /// Copies the trailing bytes out (into `into`'s tail) and forgets them.
    func moveTrailing(to into: IOBuffer) {
        guard trailing > 0, let last = buffers.last else { return }
        into.append(UnsafeRawBufferPointer(start: last.base + last.writeIndex - trailing, count: trailing))
        last.writeIndex -= trailing
        trailing = 0
    }

    /// Gives every buffer back.
    func release() {
        for b in buffers { pool.give(b) }
        buffers.removeAll(keepingCapacity: true)
        trailing = 0
    }
}
