import Glibc

/// A reusable gather list for writev: a rewritten head is sent as spans of the original bytes plus
/// added lines, with no copy. Adjacent spans are merged; it grows when a head has many fields.
public final class IOVecList {
    public private(set) var capacity: Int
    private(set) var vecs: UnsafeMutablePointer<iovec>
    public private(set) var count = 0
    public private(set) var totalBytes = 0

    public init(capacity: Int = 32) {
        self.capacity = capacity
        vecs = .allocate(capacity: capacity)
    }

    deinit { vecs.deallocate() }

    public func reset() {
        count = 0
        totalBytes = 0
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
        let bigger = UnsafeMutablePointer<iovec>.allocate(capacity: capacity * 2)
        bigger.moveInitialize(from: vecs, count: count)
        vecs.deallocate()
        vecs = bigger
        capacity *= 2
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
    /// Writes the whole gather list, resuming after short writes. The list is consumed.
    @LoopActor
    public func write(_ list: IOVecList, until deadline: UInt64) async throws(IOError) {
        var first = 0
        let n = list.count
        while first < n {
            if isClosed { throw .closed }
            let w = Glibc.writev(fd, list.vecs + first, Int32(min(n - first, 1024)))
            if w < 0 {
                let e = errno
                if e == EINTR { continue }
                if e == EAGAIN || e == EWOULDBLOCK {
                    guard await waitWritable(until: deadline) else { throw isClosed ? .closed : .timedOut }
                    continue
                }
                throw .errno(e)
            }
            var left = w
            while first < n && left >= list.vecs[first].iov_len {
                left -= list.vecs[first].iov_len
                first += 1
            }
            if first < n && left > 0 {
                list.vecs[first].iov_base = list.vecs[first].iov_base! + left
                list.vecs[first].iov_len -= left
            }
        }
    }
}
