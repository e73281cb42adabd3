import Glibc

/// A reusable gather list for writev: a rewritten head is sent as spans of the original bytes plus
/// added lines, with no copy. Adjacent spans are merged; it grows when a head has many fields.
public final class IOVecList {
    public private(set) var capacity: Int
    private(set) var vecs: UnsafeMutablePointer<iovec>
    public private(set) var count = 0
    public private(set) var totalBytes = 0
    /// Bytes consumed (written, or gathered for TLS) since the last reset: whether any of a
    /// request reached the peer decides whether it may be sent again.
    public private(set) var written = 0

    public init(capacity: Int = 32) {
        self.capacity = capacity
        vecs = .allocate(capacity: capacity)
    }

    deinit { vecs.deallocate() }

    /// The first span not yet written.
    public private(set) var first = 0

    public func reset() {
        count = 0
        totalBytes = 0
        first = 0
        written = 0
    }

    /// Drops `written` bytes from the front.
    func consume(_ n: Int) {
        written += n
        var left = n
        while first < count && left >= vecs[first].iov_len {
            left -= vecs[first].iov_len
            first += 1
        }
        if first < count && left > 0 {
            vecs[first].iov_base = vecs[first].iov_base! + left
            vecs[first].iov_len -= left
        }
    }

    /// Copies as many unwritten bytes as fit into `dst` and consumes them; returns how many.
    public func gather(into dst: UnsafeMutableRawBufferPointer) -> Int {
        var n = 0
        while first < count && n < dst.count {
            let v = vecs[first]
            let take = min(v.iov_len, dst.count - n)
            (dst.baseAddress! + n).copyMemory(from: v.iov_base!, byteCount: take)
            n += take
            consume(take)
        }
        return n
    }

    /// Adds a span.
    @discardableResult
    public func add(_ base: UnsafeRawPointer, _ length: Int) -> Bool {
        guard length > 0 else { return true }
        if count > 0 {
            let last = vecs[count - 1]
            if let lb = last.iov_base, UnsafeRawPointer(lb) + last.iov_len == base {
                vecs[count - 1].iov_len += length
                totalBytes += length
                return true
            }
        }
        if count == capacity { grow() }
        vecs[count] = iovec(iov_base: UnsafeMutableRawPointer(mutating: base), iov_len: length)
        count += 1
        totalBytes += length
        return true
    }

    private func grow() {
        capacity *= 2
        vecs = vecs.regrown(count: count, capacity: capacity)
    }

    @discardableResult
    public func add(_ s: StaticString) -> Bool {
        add(UnsafeRawPointer(s.utf8Start), s.utf8CodeUnitCount)
    }

    @discardableResult
    public func add(_ b: UnsafeRawBufferPointer) -> Bool {
        guard let base = b.baseAddress else { return true }
        return add(base, b.count)
    }
}

extension Socket {
    /// Writes what the kernel takes now; true when the whole list went out. What was written is
    /// consumed from the list, so `write(_:until:)` can finish it. (Synchronous, so the common case
    /// costs no suspension point.)
    public func writeNow(_ list: IOVecList) throws(IOError) -> Bool {
        let n = list.count
        if list.first == n { return true }
        while true {
            let w = send(vecs: list.vecs + list.first, count: min(n - list.first, 1024))
            if w < 0 {
                let e = errno
                if e == EINTR { continue }
                if e == EAGAIN || e == EWOULDBLOCK { return false }
                throw .errno(e)
            }
            list.consume(w)
            return list.first == n
        }
    }

    /// Writes the whole gather list, resuming after short writes. The list is consumed.
    nonisolated(nonsending)
    public func write(_ list: IOVecList, until deadline: UInt64) async throws(IOError) {
        while true {
            if isClosed { throw .closed }
            if try writeNow(list) { return }
            guard await waitWritable(until: deadline) else { throw isClosed ? .closed : .timedOut }
        }
    }
}
