import Glibc

/// A fixed-size byte buffer with read and write indexes, owned by one connection at a time and
/// returned to the pool when the connection idles, so idle connections hold none.
///
/// A handle, not an object: the indexes live in a small header at the start of the buffer's own
/// memory, a slice of a pool slab. So buffers cost no malloc at all, and a burst of them leaves
/// nothing behind in the heap.
public struct IOBuffer {
    /// Points at the header; the bytes follow it.
    let raw: UnsafeMutableRawPointer
    public let capacity: Int

    static let headerSize = 16

    init(raw: UnsafeMutableRawPointer, size: Int) {
        self.raw = raw
        self.capacity = size - Self.headerSize
    }

    public var base: UnsafeMutableRawPointer { raw + Self.headerSize }

    /// Start of unread bytes.
    public var readIndex: Int {
        get { raw.load(as: Int.self) }
        nonmutating set { raw.storeBytes(of: newValue, as: Int.self) }
    }

    /// End of unread bytes.
    public var writeIndex: Int {
        get { raw.load(fromByteOffset: 8, as: Int.self) }
        nonmutating set { raw.storeBytes(of: newValue, toByteOffset: 8, as: Int.self) }
    }

    public var readable: Int { writeIndex - readIndex }
    public var isEmpty: Bool { readIndex == writeIndex }
    public var writableTail: Int { capacity - writeIndex }

    public var readableBytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base + readIndex, count: writeIndex - readIndex)
    }

    public var tail: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: base + writeIndex, count: capacity - writeIndex)
    }

    public func clear() {
        readIndex = 0
        writeIndex = 0
    }

    /// Same memory.
    public func isSame(_ other: IOBuffer) -> Bool { raw == other.raw }

    /// Moves unread bytes to the front to make room at the tail.
    public func compact() {
        if readIndex == 0 { return }
        let n = readable
        if n > 0 { base.copyMemory(from: base + readIndex, byteCount: n) }
        readIndex = 0
        writeIndex = n
    }

    public func append(_ bytes: UnsafeRawBufferPointer) {
        let n = Swift.min(bytes.count, capacity - writeIndex)
        if n > 0, let src = bytes.baseAddress { (base + writeIndex).copyMemory(from: src, byteCount: n) }
        writeIndex += n
    }

    public func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    public func append(_ string: StaticString) {
        append(UnsafeRawBufferPointer(start: string.utf8Start, count: string.utf8CodeUnitCount))
    }

    public func append(byte: UInt8) {
        if writeIndex < capacity {
            base.storeBytes(of: byte, toByteOffset: writeIndex, as: UInt8.self)
            writeIndex += 1
        }
    }

    /// Appends a decimal number without allocating.
    public func append(decimal value: Int) {
        var v = value
        if v == 0 { append(byte: 0x30); return }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = 0
        withUnsafeMutableBytes(of: &digits) { d in
            while v > 0 && n < 20 {
                d[n] = UInt8(v % 10) + 0x30
                v /= 10
                n += 1
            }
            while n > 0 {
                n -= 1
                append(byte: d[n])
            }
        }
    }
}

/// A loop-owned pool of buffers, so the steady state allocates none.
///
/// Buffer memory comes from mmap'd slabs, not from malloc: a burst of thousands of 16 KiB buffers
/// would otherwise leave the heap fragmented around the small records of the connections that stay,
/// and RSS would never come down. Free buffers beyond what is needed have their pages given back
/// with MADV_DONTNEED (the mapping stays, so taking them again costs only page faults).
public final class BufferPool {
    /// Usable bytes per buffer.
    public let bufferSize: Int
    /// Bytes per buffer in the slab (header included, whole pages).
    private let stride: Int
    /// Free buffers, the most recently returned (warm) at the end, with whether each is resident.
    private var free: [(buffer: IOBuffer, resident: Bool)] = []
    private let maxFree: Int
    private let slabBuffers = 64
    /// Buffers handed out and not yet returned.
    public private(set) var inUse = 0
    /// Free buffers whose pages are resident.
    public private(set) var residentFree = 0
    public private(set) var slabBytes = 0

    /// `maxFree`: free buffers kept resident for reuse (beyond it their pages go back at once).
    public init(bufferSize: Int, maxFree: Int) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        stride = (bufferSize + IOBuffer.headerSize + page - 1) / page * page
        self.bufferSize = stride - IOBuffer.headerSize
        self.maxFree = maxFree
    }

    private func addSlab() {
        let bytes = stride * slabBuffers
        guard let mem = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), mem != MAP_FAILED else {
            fatalError("mmap of a \(bytes)-byte buffer slab failed: errno \(errno)")
        }
        slabBytes += bytes
        // Only called with no free buffer left; untouched pages are not resident yet.
        for i in (0..<slabBuffers).reversed() {
            free.append((IOBuffer(raw: mem + i * stride, size: stride), false))
        }
    }

    public func take() -> IOBuffer {
        if free.isEmpty { addSlab() }
        let (b, resident) = free.removeLast()
        if resident { residentFree -= 1 }
        b.clear()
        inUse += 1
        return b
    }

    public func give(_ buffer: IOBuffer) {
        inUse -= 1
        free.append((buffer, true))
        residentFree += 1
        if residentFree > maxFree { release(keep: maxFree) }
    }

    /// Gives back the pages of free buffers beyond the `keep` most recently used; returns how many.
    @discardableResult
    public func release(keep: Int) -> Int {
        var released = 0
        var i = free.count - 1 - keep
        while i >= 0 && residentFree > keep {
            if free[i].resident {
                madvise(free[i].buffer.raw, stride, MADV_DONTNEED)
                free[i].resident = false
                residentFree -= 1
                released += 1
            }
            i -= 1
        }
        return released
    }

    /// Memory of the buffers handed out (whole pages, headers included).
    public var bytesInUse: Int { inUse * stride }

    /// Bytes of free buffers that are resident.
    public var bytesCached: Int { residentFree * stride }
}
