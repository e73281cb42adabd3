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
public final class TimerHeap {
    private var items: [TimerNode] = []

    public init() { items.reserveCapacity(1024) }

    public var count: Int { items.count }

    /// Sets `node`'s deadline (0 clears it).
    public func schedule(_ node: TimerNode, at deadline: UInt64) {
        node.deadline = deadline
        guard deadline != 0 else { return }
        if node.heapIndex >= 0 {
            if deadline < node.queuedAt {
                node.queuedAt = deadline
                siftUp(node.heapIndex)
            }
        } else {
            node.queuedAt = deadline
            node.heapIndex = items.count
            items.append(node)
            siftUp(node.heapIndex)
        }
    }

    /// Takes `node` out of the heap so the heap no longer keeps it alive.
    public func remove(_ node: TimerNode) {
        node.deadline = 0
        let i = node.heapIndex
        guard i >= 0 else { return }
        let last = items.count - 1
        if i != last {
            items.swapAt(i, last)
            items[i].heapIndex = i
        }
        items.removeLast()
        node.heapIndex = -1
        if i < items.count {
            siftDown(i)
            siftUp(i)
        }
    }

    /// Milliseconds until the earliest entry, for epoll_wait; -1 when there is none.
    public func timeoutMillis(now: UInt64) -> Int32 {
        guard let first = items.first else { return -1 }
        if first.queuedAt <= now { return 0 }
        let ms = (first.queuedAt - now + 999_999) / 1_000_000
        return Int32(min(ms, 60_000))
    }

    /// Fires every node whose deadline has passed.
    public func fire(now: UInt64) {
        while let first = items.first, first.queuedAt <= now {
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

    private func siftUp(_ start: Int) {
        var i = start
        while i > 0 {
            let parent = (i - 1) / 2
            if items[parent].queuedAt <= items[i].queuedAt { break }
            items.swapAt(parent, i)
            items[parent].heapIndex = parent
            items[i].heapIndex = i
            i = parent
        }
    }

    private func siftDown(_ start: Int) {
        var i = start
        let n = items.count
        while true {
            let l = 2 * i + 1
            if l >= n { break }
            var m = l
            if l + 1 < n && items[l + 1].queuedAt < items[l].queuedAt { m = l + 1 }
            if items[i].queuedAt <= items[m].queuedAt { break }
            items.swapAt(i, m)
            items[i].heapIndex = i
            items[m].heapIndex = m
            i = m
        }
    }
}
