import Runtime

/// A response can end in the kernel's send queue, which grows to megabytes for a client that
/// reads a few bytes a second (slowhttptest's slow read). Our writes then finish at once, so the
/// minimum rate is checked against the queue instead: while the connection waits for its next
/// request, the client must keep taking the response's tail at `min_rate`, or the connection
/// is reset (its unsent bytes dropped: no answer can be owed to a client that does not read).
extension ClientSession {
    /// After a response of more than one read: watch the send queue when bytes remain in it.
    func watchDrain() {
        sendRateArmed = false
        guard sendRate.enabled else { return }
        let unsent = socket.unsentBytes
        guard unsent > 0 else { return }
        drainUnsent = unsent
        let now = EventLoop.shared.now
        drainCheckAt = sendRate.deadline(now: now, limit: now + Self.drainCheckInterval)
        drainFrom = now
    }

    /// A look at the send queue: false when the client was too slow and the connection is closed.
    func checkDrain() -> Bool {
        let now = EventLoop.shared.now
        let unsent = socket.unsentBytes
        sendRate.record(waitFrom: drainFrom, to: now, moved: drainUnsent - unsent)
        drainFrom = now
        drainUnsent = unsent
        if unsent == 0 {
            drainCheckAt = 0
            return true
        }
        if sendRate.exceeded {
            drainCheckAt = 0
            ctx.stats.timedOut(.responseMinRate)
            socket.abort()
            close()
            return false
        }
        drainCheckAt = sendRate.deadline(now: now, limit: now + Self.drainCheckInterval)
        return true
    }

    static let drainCheckInterval: UInt64 = 1_000_000_000
}
