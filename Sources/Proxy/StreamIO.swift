import Glibc
import Runtime
import TLS

/// One end of a proxied exchange: a socket, and the TLS stream over it when that side speaks
/// TLS. Client sessions and backend connections both are one, so the HTTP code reads and writes
/// either the same way.
protocol StreamEnd: AnyObject {
    var socket: Socket { get }
    var tls: TLSStream? { get }
    /// The client's end (else a backend's): where its bytes are counted (`Traffic`).
    static var isClient: Bool { get }
    /// Told how many bytes each write handed over (the client's count is its access-log line's).
    func sent(_ n: Int)
}

extension StreamEnd {
    /// Reads once into `slot` (see `BufferSlot.fill`); 0 means EOF.
    @inline(__always) nonisolated(nonsending)
    func fill(_ slot: BufferSlot, until deadline: UInt64) async throws(IOError) -> Int {
        let n = if let t = tls { try await slot.fill(from: t, until: deadline) } else { try await slot.fill(from: socket, until: deadline) }
        Traffic.received(n, client: Self.isClient)
        return n
    }

    /// Reads once into `into` (waiting until `deadline`); 0 means EOF.
    @inline(__always) nonisolated(nonsending)
    func read(into: UnsafeMutableRawBufferPointer, until deadline: UInt64) async throws(IOError) -> Int {
        let n = if let t = tls { try await t.read(into: into, until: deadline) } else { try await socket.read(into: into, until: deadline) }
        Traffic.received(n, client: Self.isClient)
        return n
    }

    /// Writes what the peer takes now without waiting; 0 when it would block.
    @inline(__always)
    func sendNow(_ bytes: UnsafeRawBufferPointer) throws(IOError) -> Int {
        let n: Int
        if let t = tls { n = try t.writeNow(bytes) ?? 0 } else { n = try socket.writeNow(bytes) ?? 0 }
        sent(n)
        return n
    }

    @inline(__always) nonisolated(nonsending)
    func send(_ bytes: UnsafeRawBufferPointer, until deadline: UInt64) async throws(IOError) {
        if let t = tls { try await t.write(bytes, until: deadline) } else { try await socket.write(bytes, until: deadline) }
        sent(bytes.count)
    }

    /// Plain sockets try the writev synchronously (no suspension point in the common case);
    /// true when all of it went out.
    @inline(__always)
    func sendNow(_ list: IOVecList) throws(IOError) -> Bool {
        guard tls == nil else { return false }
        let before = list.written
        defer { sent(list.written - before) }
        return try socket.writeNow(list)
    }

    /// Sends a gather list: writev, or through TLS coalesced in `staging` (one record per 16 KiB,
    /// not one per span).
    nonisolated(nonsending)
    func send(_ list: IOVecList, staging: UnsafeMutableRawBufferPointer, until deadline: UInt64) async throws(IOError) {
        let before = list.written
        defer { sent(list.written - before) }
        if let t = tls {
            try await t.write(list, staging: staging, until: deadline)
        } else {
            try await socket.write(list, until: deadline)
        }
    }
}

/// Reading and closing without waiting, for owners driven by readiness alone (tunnels, HTTP/2
/// connections) rather than by a task's waits.
extension StreamEnd {
    /// Whether a read might find bytes now: epoll reported some since the last short read, or
    /// OpenSSL holds some, or its last read waits for room to write.
    var mayReceive: Bool {
        guard let t = tls else { return socket.mayRead }
        return socket.mayRead || t.hasPendingBytes || t.readWantsWrite
    }

    /// Reads what is there now, without waiting: bytes, 0 at the peer's end, nil when it would block.
    func receiveNow(into: UnsafeMutableRawBufferPointer) throws(IOError) -> Int? {
        let n = if let t = tls { try t.readNow(into: into) } else { try socket.readNow(into) }
        if let n { Traffic.received(n, client: Self.isClient) }
        return n
    }

    /// Ends this side's direction (half-close): over TLS a close_notify (best effort: should the
    /// socket be full it stays in OpenSSL), then a FIN either way.
    func shutdownWrite() {
        tls?.shutdown()
        socket.shutdownWrite()
    }
}

extension ClientSession: StreamEnd {
    static var isClient: Bool { true }

    @inline(__always)
    func sent(_ n: Int) {
        sentBytes &+= n
        Traffic.sent(n, client: true)
    }
}

extension UpstreamConnection: StreamEnd {
    static var isClient: Bool { false }

    @inline(__always)
    func sent(_ n: Int) { Traffic.sent(n, client: false) }
}

extension BufferSlot {
    /// Reads once through `tls` (whose decrypted bytes are returned before any wait), appending
    /// to the buffer; 0 means EOF. The buffer is taken only for the read and given back if empty.
    nonisolated(nonsending)
    func fill(from tls: TLSStream, until deadline: UInt64) async throws(IOError) -> Int {
        let buf = held()
        if buf.writableTail == 0 { buf.compact() }
        if buf.writableTail == 0 { throw .errno(ENOBUFS) }
        do {
            let n = try await tls.read(into: buf.tail, until: deadline)
            buf.writeIndex += n
            if n == 0 { releaseIfEmpty() }
            return n
        } catch {
            releaseIfEmpty()
            throw error
        }
    }
}
