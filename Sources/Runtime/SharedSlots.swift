import CLinux
import Glibc

/// Fixed-size slots of Doubles in memory shared by a supervisor and its workers (a memfd the
/// supervisor creates and hands over): each worker writes only its own slot, any process reads
/// any slot. A slot is a header (a sequence number, odd while its writer is inside; whether its
/// worker is alive; how many values; a hash of what they are) and its values. A writer copies a
/// vector made beforehand, so it is inside for one copy; readers copy and check the sequence
/// number did not move, so a copy is never half old, half new; no one ever waits on a lock.
public final class SharedSlots: @unchecked Sendable {
    /// Room per slot: sparse until touched, so only what a worker writes costs memory. The first
    /// half holds the header and the values, the second the names of the values (one per line),
    /// so a reader can add up a vector published by a worker of another config (a reload that
    /// added a server) series by series.
    public static let slotBytes = 4 << 20
    static let header = 64
    static let namesOffset = slotBytes / 2
    public static var capacity: Int { (namesOffset - header) / 8 }

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

    /// Header words: 0 the sequence number, 1 alive, 2 how many values, 3 their layout, 4 the
    /// length of the names.
    private func head(_ slot: Int) -> UnsafeMutablePointer<UInt64> { (base + slot * Self.slotBytes).assumingMemoryBound(to: UInt64.self) }
    private func values(_ slot: Int) -> UnsafeMutablePointer<Double> { (base + slot * Self.slotBytes + Self.header).assumingMemoryBound(to: Double.self) }
    private func names(_ slot: Int) -> UnsafeMutableRawPointer { base + slot * Self.slotBytes + Self.namesOffset }

    /// Copies `count` values into `slot`, marking its worker alive. `layout` names what the values
    /// are (a hash of the series); `names`, given by a worker taking the slot over, says which
    /// series each value is, one per line (kept until the next worker gives its own).
    public func publish(slot: Int, values v: UnsafePointer<Double>, count: Int, layout: UInt64, names n: [UInt8]? = nil) {
        let h = head(slot)
        let seq = gh_load_relaxed(h)
        gh_store_relaxed(h, seq | 1)
        gh_fence_release()
        values(slot).update(from: v, count: count)
        if let n, n.count <= Self.slotBytes - Self.namesOffset {
            n.withUnsafeBytes { names(slot).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            h[4] = UInt64(n.count)
        }
        h[1] = 1
        h[2] = UInt64(count)
        h[3] = layout
        gh_store_release(h, (seq | 1) &+ 1)
    }

    /// What a read found: whether the slot's worker is alive, how many values it holds (at most
    /// the room given are copied) and their layout.
    public struct Found: Sendable, Equatable {
        public let alive: Bool
        public let count: Int
        public let layout: UInt64
    }

    /// Copies `slot`'s values into `into` (room for `room`), or nil when it holds nothing readable
    /// now (never written, or its writer inside for longer than the tries last).
    public func read(slot: Int, into: UnsafeMutablePointer<Double>, room: Int) -> Found? {
        consistent(slot) { h in
            let found = Found(alive: h[1] == 1, count: Int(h[2]), layout: h[3])
            into.update(from: values(slot), count: min(found.count, room))
            return found
        }
    }

    /// The names of `slot`'s values, one per line, when they are still those of `layout`.
    public func names(slot: Int, layout: UInt64) -> [UInt8]? {
        let copy: [UInt8]?? = consistent(slot) { h in
            guard h[3] == layout else { return nil }
            let n = min(Int(h[4]), Self.slotBytes - Self.namesOffset)
            return [UInt8](UnsafeRawBufferPointer(start: names(slot), count: n))
        }
        return copy ?? nil
    }

    /// `body` on `slot`'s header as one consistent copy: retried while a writer is inside or
    /// went through meanwhile.
    private func consistent<R>(_ slot: Int, _ body: (UnsafeMutablePointer<UInt64>) -> R) -> R? {
        let h = head(slot)
        for attempt in 0..<200 {
            let before = gh_load_acquire(h)
            if before == 0 { return nil }
            if before & 1 == 0 {
                let r = body(h)
                gh_fence_acquire()
                if gh_load_relaxed(h) == before { return r }
            }
            if attempt > 20 { sched_yield() }  // its writer may have been preempted inside
        }
        return nil
    }

    /// The supervisor's own figures, in the slot after the workers': worker restarts, workers
    /// configured, when the running config was loaded (unix seconds), its generation, reloads
    /// that took and reloads refused.
    public static let supervisorLayout: UInt64 = 0x5355_5045_5256_0002
    public static let supervisorValues = 6

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
