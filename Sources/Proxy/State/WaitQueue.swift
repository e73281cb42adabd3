/// A bounded FIFO of requests waiting for an upstream connection. Timed-out or cancelled entries
/// are removed lazily, so both ends are O(1).
public struct WaitQueue<W: AnyObject> {
    public let capacity: Int
    private var items: [W?] = []
    private var head = 0
    public private(set) var count = 0
    /// Entries visited by `pop` and `remove`, so a test can tell constant work from a scan.
    public private(set) var steps = 0

    public init(capacity: Int) { self.capacity = capacity }

    public var isEmpty: Bool { count == 0 }

    /// False when the queue is full (the request gets a 503).
    public mutating func push(_ w: W) -> Bool {
        guard count < capacity else { return false }
        if head > 64 && head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
        items.append(w)
        count += 1
        return true
    }

    /// The oldest waiter still waiting.
    public mutating func pop() -> W? {
        while head < items.count {
            steps += 1
            let w = items[head]
            items[head] = nil
            head += 1
            if let w {
                count -= 1
                if head == items.count {
                    items.removeAll(keepingCapacity: true)
                    head = 0
                }
                return w
            }
        }
        return nil
    }

    /// Takes `w` out (it timed out).
    public mutating func remove(_ w: W) {
        for i in head..<items.count {
            steps += 1
            guard items[i] === w else { continue }
            items[i] = nil
            count -= 1
            return
        }
    }
}
