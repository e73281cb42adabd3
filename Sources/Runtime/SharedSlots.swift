import CLinux
import Glibc

/// Fixed-size slots of Doubles in memory shared by a supervisor and its workers (a memfd the
/// supervisor creates and hands over): each worker writes only its own slot, any process reads
/// any slot. A slot is a header (a sequence number, odd while its writer is inside; whether its
/// worker is alive; how many values; a hash of what they are) and its values. A writer copies a
/// vector made beforehand, so it is inside for one copy; readers copy and check the sequence
/// number did not move, so a copy is never half old, half new; no one ever waits on a lock.
public final class SharedSlots: @unchecked Sendable {
    /// Room per slot: sparse until touched, so only what a worker writes costs memory.
    public static let slotBytes = 4 << 20
    static let header = 32
    public static var capacity: Int { (slotBytes - header) / 8 }

    public let slots: Int
    private let base: UnsafeMutableRawPointer

    /// A new shared file for `slots` workers (the supervisor's), or nil.
    public static func create(slots: Int) -> (fd: Int32, slots: SharedSlots)? {
        let fd = gh_memfd("gatehouse-metrics", UInt64(slots * slotBytes))
        guard fd >= 0, let s = SharedSlots(fd: fd, slots: slots) else { return nil }
        return (fd, s)
    }

    /// Maps the file handed over.
    public init?(fd: Int32, slots: Int) {
        guard let p = mmap(nil, slots * Self.slotBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), p != MAP_FAILED else { return nil }
        base = p
        self.slots = slots
    }

    private func head(_ slot: Int) -> UnsafeMutablePointer<UInt64> { (base + slot * Self.slotBytes).assumingMemoryBound(to: UInt64.self) }
    private func values(_ slot: Int) -> UnsafeMutablePointer<Double> { (base + slot * Self.slotBytes + Self.header).assumingMemoryBound(to: Double.self) }

    /// Copies `count` values into `slot`, marking its worker alive. `layout` names what the values
    /// are (a hash of the series), so a reader never adds up vectors that mean different things.
    public func publish(slot: Int, values v: UnsafePointer<Double>, count: Int, layout: UInt64) {
        let h = head(slot)
        let n = gh_load_relaxed(h)
        gh_store_relaxed(h, n | 1)
        gh_fence_release()
        values(slot).update(from: v, count: count)
        h[1] = 1
        h[2] = UInt64(count)
        h[3] = layout
        gh_store_release(h, (n | 1) &+ 1)
    }

    /// Copies `slot` into `into` (room for `count`) when it holds `count` values of `layout`, and
    /// says whether its worker is alive; nil when it holds nothing readable now (never written,
    /// other values, or its writer inside for longer than the tries last).
    public func read(slot: Int, count: Int, layout: UInt64, into: UnsafeMutablePointer<Double>) -> Bool? {
        let h = head(slot)
        for attempt in 0..<200 {
            let before = gh_load_acquire(h)
            if before == 0 { return nil }
            if before & 1 == 0 {
                guard Int(h[2]) == count, h[3] == layout else { return nil }
                let alive = h[1] == 1
                into.update(from: values(slot), count: count)
                gh_fence_acquire()
                if gh_load_relaxed(h) == before { return alive }
            }
            if attempt > 20 { sched_yield() }  // its writer may have been preempted inside
        }
        return nil
    }

    /// The layout published in `slot`, if any (0: none).
    public func layout(slot: Int) -> UInt64 {
        let h = head(slot)
        return gh_load_acquire(h) == 0 ? 0 : h[3]
    }

    /// The supervisor's own figures, in the slot after the workers': worker restarts, workers
    /// configured, when the running config was loaded (unix seconds).
    public static let supervisorLayout: UInt64 = 0x5355_5045_5256_0001
    public static let supervisorValues = 3

    /// The supervisor reaped `slot`'s worker: its gauges no longer count. A slot whose worker died
    /// while writing is left as it is (odd): unreadable rather than half-written.
    public func markDead(slot: Int) {
        let h = head(slot)
        let n = gh_load_relaxed(h)
        guard n != 0, n & 1 == 0 else { return }
        gh_store_relaxed(h, n | 1)
        gh_fence_release()
        h[1] = 0
        gh_store_release(h, (n | 1) &+ 1)
    }
}
