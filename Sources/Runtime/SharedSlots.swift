import CLinux
import Glibc

/// Fixed-size slots of Doubles in memory shared by a supervisor and its workers (a memfd the
/// supervisor creates and hands over): each worker writes only its own slot, any process reads
/// any slot. A slot is a header (a sequence number, odd while its writer is inside; whether its
/// worker is alive; how many values) and its values. Readers copy and check the sequence
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

    private func seq(_ slot: Int) -> UnsafeMutablePointer<UInt64> { (base + slot * Self.slotBytes).assumingMemoryBound(to: UInt64.self) }
    private func values(_ slot: Int) -> UnsafeMutablePointer<Double> { (base + slot * Self.slotBytes + Self.header).assumingMemoryBound(to: Double.self) }

    /// Writes `count` values into `slot` with `fill`, marking the slot's worker alive.
    public func publish(slot: Int, count: Int, _ fill: (UnsafeMutablePointer<Double>) -> Void) {
        let s = seq(slot)
        let n = gh_load_acquire(s)
        gh_store_release(s, n | 1)
        fill(values(slot))
        s[1] = 1
        s[2] = UInt64(count)
        gh_store_release(s, (n | 1) &+ 1)
    }

    /// Copies `slot` into `into` (room for `count`); nil when nothing of that size was ever
    /// published there. `alive` is false once the supervisor saw its worker exit.
    public func read(slot: Int, count: Int, into: UnsafeMutablePointer<Double>) -> Bool? {
        let s = seq(slot)
        for _ in 0..<1000 {
            let before = gh_load_acquire(s)
            if before == 0 { return nil }
            if before & 1 == 1 { continue }
            let alive = s[1] == 1
            guard Int(s[2]) == count else { return nil }
            into.update(from: values(slot), count: count)
            if gh_load_acquire(s) == before { return alive }
        }
        return nil
    }

    /// The supervisor reaped `slot`'s worker: its gauges no longer count.
    public func markDead(slot: Int) {
        let s = seq(slot)
        let n = gh_load_acquire(s)
        guard n != 0 else { return }
        gh_store_release(s, n | 1)
        s[1] = 0
        gh_store_release(s, (n | 1) &+ 1)
    }
}
