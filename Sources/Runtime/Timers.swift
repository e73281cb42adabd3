/// Something with one deadline. A subclass overrides `timerFired`.
///
/// One deadline per object, as in HAProxy's tick model: moving a deadline later does not touch the
/// heap (the old entry fires, sees the later deadline and requeues itself); only an earlier one
/// sifts up. So a busy connection that re-arms its timeout on every read costs nothing.
open class TimerNode {
    /// The effective deadline in monotonic ns; 0 means none.
    public final var deadline: UInt64 = 0
    final var queuedAt: UInt64 = 0
    final var heapIndex: Int = -1

    public init() {}

    open func timerFired() {}
}

/// An indexed binary min-heap of timer nodes keyed by the time they are queued for.
///
/// Entries hold the key beside an unmanaged reference, so sifting compares plain integers and
/// moves two words without touching the nodes' reference counts; the heap owns one retain per
/// queued node, taken on insert and dropped on removal.
public final class TimerHeap {
    private struct Entry {
        var at: UInt64
        var node: Unmanaged<TimerNode>
    }

    private var items: UnsafeMutablePointer<Entry>
    private var capacity: Int
    public private(set) var count = 0

    public init() {
        capacity = 1024
        items = .allocate(capacity: capacity)
    }

    deinit {
        for i in 0..<count { items[i].node.release() }
        items.deallocate()
    }

    /// Sets `node`'s deadline (0 clears it).
    public func schedule(_ node: TimerNode, at deadline: UInt64) {
        node.deadline = deadline
        guard deadline != 0 else { return }
        let i = node.heapIndex
        if i >= 0 {
            if deadline < node.queuedAt {
                node.queuedAt = deadline
                items[i].at = deadline
                siftUp(i)
            }
        } else {
            if count == capacity { grow() }
            node.queuedAt = deadline
            node.heapIndex = count
            (items + count).initialize(to: Entry(at: deadline, node: .passRetained(node)))
            count += 1
            siftUp(count - 1)
        }
    }

    /// Takes `node` out of the heap so the heap no longer keeps it alive.
    public func remove(_ node: TimerNode) {
        node.deadline = 0
        let i = node.heapIndex
        guard i >= 0 else { return }
        node.heapIndex = -1
        let removed = items[i].node
        count -= 1
        if i != count {
            items[i] = items[count]
            setIndex(i)
            siftDown(i)
            siftUp(i)
        }
        removed.release()
    }

    /// Milliseconds until the earliest entry, for epoll_wait; -1 when there is none.
    public func timeoutMillis(now: UInt64) -> Int32 {
        guard count > 0 else { return -1 }
        let first = items[0].at
        if first <= now { return 0 }
        let ms = (first - now + 999_999) / 1_000_000
        return Int32(min(ms, 60_000))
    }

    /// Fires every node whose deadline has passed.
    public func fire(now: UInt64) {
        while count > 0, items[0].at <= now {
            let first = items[0].node.retain().takeRetainedValue()
            let wanted = first.deadline
            remove(first)  // clears the deadline, so the handler may arm a new one
            if wanted == 0 { continue }
            if wanted > now {
                schedule(first, at: wanted)
                continue
            }
            first.timerFired()
        }
    }

    private func setIndex(_ i: Int) {
        let index = i
        items[i].node._withUnsafeGuaranteedRef { $0.heapIndex = index }
    }

    private func grow() {
        capacity *= 2
        items = items.regrown(count: count, capacity: capacity)
    }

    private func siftUp(_ start: Int) {
        var i = start
        let e = items[i]
        while i > 0 {
            let parent = (i - 1) / 2
            if items[parent].at <= e.at { break }
            items[i] = items[parent]
            setIndex(i)
            i = parent
        }
        items[i] = e
        setIndex(i)
    }

    private func siftDown(_ start: Int) {
        var i = start
        let e = items[i]
        while true {
            let l = 2 * i + 1
            if l >= count { break }
            var m = l
            if l + 1 < count && items[l + 1].at < items[l].at { m = l + 1 }
            if e.at <= items[m].at { break }
            items[i] = items[m]
            setIndex(i)
            i = m
        }
        items[i] = e
        setIndex(i)
    }
}
