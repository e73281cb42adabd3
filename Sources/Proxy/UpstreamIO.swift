import Runtime
import TLS

/// A backend connection's bytes: straight to the socket, or through its TLS stream. Forwarding
/// goes through these, so the HTTP code is the same for both.
extension UpstreamConnection {
    @LoopActor @inline(__always)
    func fill(_ slot: BufferSlot, until deadline: UInt64) async throws(IOError) -> Int {
        if let t = tls { return try await slot.fill(from: t, until: deadline) }
        return try await slot.fill(from: socket, until: deadline)
    }

    @LoopActor @inline(__always)
    func send(_ bytes: UnsafeRawBufferPointer, until deadline: UInt64) async throws(IOError) {
        if let t = tls { try await t.write(bytes, until: deadline) } else { try await socket.write(bytes, until: deadline) }
    }

    /// Plain connections try the writev synchronously; true when all of it went out.
    @inline(__always)
    func sendNow(_ list: IOVecList) throws(IOError) -> Bool {
        tls == nil ? try socket.writeNow(list) : false
    }

    /// Sends a gather list (through TLS: coalesced in `staging`, one record per 16 KiB).
    @LoopActor
    func send(_ list: IOVecList, staging: UnsafeMutableRawBufferPointer, until deadline: UInt64) async throws(IOError) {
        if let t = tls {
            try await t.write(list, staging: staging, until: deadline)
        } else {
            try await socket.write(list, until: deadline)
        }
    }
}
