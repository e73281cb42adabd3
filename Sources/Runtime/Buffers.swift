/// A fixed-size byte buffer with read and write indexes. Owned by one connection at a time and
/// returned to the pool when the connection idles, so idle connections hold none.
public final class IOBuffer {
    public let base: UnsafeMutableRawPointer
    public let capacity: Int
    /// Start of unread bytes.
    public var readIndex = 0
    /// End of unread bytes.
    public var writeIndex = 0

    init(capacity: Int) {
        self.capacity = capacity
        base = .allocate(byteCount: capacity, alignment: 16)
    }

    deinit { base.deallocate() }

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

/// A loop-owned free list of buffers, so the steady state allocates none.
public final class BufferPool {
    public let bufferSize: Int
    private var free: [IOBuffer] = []
    private let maxFree: Int
    /// Buffers handed out and not yet returned.
    public private(set) var inUse = 0

    public init(bufferSize: Int, maxFree: Int) {
        self.bufferSize = bufferSize
        self.maxFree = maxFree
        free.reserveCapacity(maxFree)
    }

    public func take() -> IOBuffer {
        inUse += 1
        if let b = free.popLast() {
            b.clear()
            return b
        }
        return IOBuffer(capacity: bufferSize)
    }

    public func give(_ buffer: IOBuffer) {
        inUse -= 1
        if free.count < maxFree { free.append(buffer) }
    }

    /// Frees cached buffers beyond `keep`; returns how many were freed.
    @discardableResult
    public func shrink(keep: Int) -> Int {
        let extra = free.count - keep
        guard extra > 0 else { return 0 }
        free.removeLast(extra)
        return extra
    }

    public var cachedCount: Int { free.count }

    /// Bytes held by buffers in use plus cached ones.
    public var bytesHeld: Int { (inUse + free.count) * bufferSize }
    public var bytesCached: Int { free.count * bufferSize }
}
