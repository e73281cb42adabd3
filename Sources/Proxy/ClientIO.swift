import Runtime
import TLS

/// The client side's bytes: straight to the socket, or through the connection's TLS stream.
/// Everything in a session that reads from or writes to the client goes through these, so the
/// HTTP code is the same for both.
extension ClientSession {
    /// Reads once into the inbound buffer (see `BufferSlot.fill`); 0 means EOF.
    @LoopActor @inline(__always)
    func fillInbound(until deadline: UInt64) async throws(IOError) -> Int {
        if let t = tls { return try await inbound.fill(from: t, until: deadline) }
        return try await inbound.fill(from: socket, until: deadline)
    }

    @LoopActor @inline(__always)
    func send(_ bytes: UnsafeRawBufferPointer, until deadline: UInt64) async throws(IOError) {
        if let t = tls { try await t.write(bytes, until: deadline) } else { try await socket.write(bytes, until: deadline) }
    }

    /// Plain connections try the writev synchronously (no suspension point in the common case);
    /// true when all of it went out.
    @inline(__always)
    func sendNow(_ list: IOVecList) throws(IOError) -> Bool {
        tls == nil ? try socket.writeNow(list) : false
    }

    /// Sends a gather list: one writev in the common case, one TLS record per 16 KiB through TLS.
    @LoopActor
    func send(_ list: IOVecList, _ ws: Workspace, until deadline: UInt64) async throws(IOError) {
        if let t = tls {
            try await t.write(list, staging: ws.tlsStaging, until: deadline)
        } else if try !socket.writeNow(list) {
            try await socket.write(list, until: deadline)
        }
    }
}

extension BufferSlot {
    /// Reads once through `tls` (whose decrypted bytes are returned before any wait), appending
    /// to the buffer; 0 means EOF. The buffer is taken only for the read and given back if empty.
    @LoopActor
    func fill(from tls: TLSStream, until deadline: UInt64) async throws(IOError) -> Int {
        let buf: IOBuffer
        if let b = buffer { buf = b } else { buf = pool.take(); buffer = buf }
        if buf.writableTail == 0 { buf.compact() }
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
