/// A worker's bounded queue of formatted access-log lines waiting for the supervisor. Whole lines
/// go in, in order; a line that does not fit is dropped and counted, never waited for, so a log
/// reader that stalls costs requests nothing but their lines. Lines come out in batches of whole
/// lines up to a bound (one datagram each), as at most two spans since the ring wraps.
final class LineRing {
    let capacity: Int
    private let storage: UnsafeMutableRawPointer
    /// Bytes ever taken out and ever put in: their difference is what the ring holds, and each
    /// modulo `capacity` is where it starts and ends.
    private var head = 0
    private var tail = 0
    /// Lines offered, and of those the ones lost: that did not fit, or were thrown away.
    private(set) var lines = 0
    private(set) var dropped = 0

    init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
        storage = .allocate(byteCount: capacity, alignment: 16)
    }

    deinit { storage.deallocate() }

    var count: Int { tail - head }
    var isEmpty: Bool { tail == head }

    /// Puts in one whole line (ending in a newline); false, and counted, when it does not fit.
    @discardableResult
    func append(_ line: UnsafeRawBufferPointer) -> Bool {
        lines += 1
        guard line.count <= capacity - count, let src = line.baseAddress else {
            dropped += 1
            return false
        }
        let at = tail % capacity
        let first = min(line.count, capacity - at)
        (storage + at).copyMemory(from: src, byteCount: first)
        if first < line.count { storage.copyMemory(from: src + first, byteCount: line.count - first) }
        tail += line.count
        return true
    }

    /// The oldest lines, at most `max` bytes of them and ending where a line ends (unless a single
    /// line is longer than `max`): the span up to the ring's end, then the one from its start.
    func front(max: Int) -> (UnsafeRawBufferPointer, UnsafeRawBufferPointer) {
        var n = min(count, max)
        if n < count, let end = lastNewline(before: head + n) { n = end + 1 - head }
        let at = head % capacity
        let first = min(n, capacity - at)
        return (UnsafeRawBufferPointer(start: storage + at, count: first),
                UnsafeRawBufferPointer(start: storage, count: n - first))
    }

    /// Takes out the first `n` bytes (what `front` gave, once sent).
    func consume(_ n: Int) {
        precondition(n <= count)
        head += n
        restartIfEmpty()
    }

    /// An empty ring starts again at its first byte: lines are then written where the last batch
    /// was, memory still in the cache, instead of walking through the whole ring (1 MiB by
    /// default) and evicting what requests use. The ring fills further only while the socket is full.
    private func restartIfEmpty() {
        if head == tail {
            head = 0
            tail = 0
        }
    }

    /// Throws away every line held (nobody will read them), counting them as dropped.
    func discardAll() {
        var i = head
        while i < tail {
            if storage.load(fromByteOffset: i % capacity, as: UInt8.self) == 0x0A { dropped += 1 }
            i += 1
        }
        head = tail
        restartIfEmpty()
    }

    /// The position of the last newline before `end`, looking back no further than the head.
    private func lastNewline(before end: Int) -> Int? {
        var i = end - 1
        while i >= head {
            if storage.load(fromByteOffset: i % capacity, as: UInt8.self) == 0x0A { return i }
            i -= 1
        }
        return nil
    }
}
