/// A bounded FIFO of requests waiting for an upstream connection, where a waiter may exclude one
/// server (a failover retry must not be handed back the server it just left).
///
/// Waiters stand in lanes by the server they exclude (lane 0: none; lane i + 1: server i), each a
/// FIFO stamped with a global arrival number. A slot freed on server i goes to the oldest head among
/// the lanes that may use it: with a handful of servers that is a handful of comparisons, and no
/// waiter is ever skipped over and revisited. A waiter is removed (timed out) through the ticket
/// `push` gave it, in constant time; the entry is left empty and dropped when it reaches the head.
public struct WaitQueue<W: AnyObject> {
    /// Where a waiter stands: its lane and its position in that lane since the lane began.
    public struct Ticket: Equatable, Sendable {
        let lane: Int
        let position: Int
    }

    private struct Entry {
        var arrival: UInt64
        var waiter: W?
    }

    /// One FIFO: `items[k]` is at position `base + k`; entries before `head` are gone.
    private struct Lane {
        var items: [Entry] = []
        var head = 0
        var base = 0

        /// Drops removed entries at the front; the oldest live entry's arrival, if any.
        mutating func front(_ steps: inout Int) -> UInt64? {
            while head < items.count {
                steps += 1
                if items[head].waiter != nil {
                    if head > 64 && head * 2 > items.count {
                        items.removeFirst(head)
                        base += head
                        head = 0
                    }
                    return items[head].arrival
                }
                head += 1
            }
            base += items.count
            items.removeAll(keepingCapacity: true)
            head = 0
            return nil
        }

        /// Takes the front entry, which `front` found live.
        mutating func takeFront() -> W? {
            let w = items[head].waiter
            items[head].waiter = nil
            head += 1
            return w
        }
    }

    public let capacity: Int
    private var lanes: [Lane]
    private var arrivals: UInt64 = 0
    public private(set) var count = 0
    /// Entries visited by `pop` and `remove`, so a test can tell constant work from a scan.
    public private(set) var steps = 0

    /// `servers`: how many servers a waiter may exclude one of.
    public init(capacity: Int, servers: Int = 0) {
        self.capacity = capacity
        lanes = Array(repeating: Lane(), count: servers + 1)
    }

    public var isEmpty: Bool { count == 0 }

    /// Nil when the queue is full (the request gets a 503).
    public mutating func push(_ w: W, excluding server: Int? = nil) -> Ticket? {
        guard count < capacity else { return nil }
        let l = server.map { $0 + 1 } ?? 0
        _ = lanes[l].front(&steps)  // so that entries removed at the front do not pile up
        arrivals += 1
        lanes[l].items.append(Entry(arrival: arrivals, waiter: w))
        count += 1
        return Ticket(lane: l, position: lanes[l].base + lanes[l].items.count - 1)
    }

    /// The oldest waiter that may be given server `server` (nil: any waiter), where `accepts`
    /// says whether waiters excluding a given server (nil: none) may take it now.
    public mutating func pop(for server: Int? = nil, accepts: (Int?) -> Bool = { _ in true }) -> W? {
        guard count > 0 else { return nil }
        var best = -1
        var bestArrival = UInt64.max
        for l in lanes.indices where server.map({ l != $0 + 1 }) ?? true {
            guard let a = lanes[l].front(&steps), a < bestArrival, accepts(l == 0 ? nil : l - 1) else { continue }
            best = l
            bestArrival = a
        }
        guard best >= 0 else { return nil }
        count -= 1
        return lanes[best].takeFront()
    }

    /// Takes the waiter holding `ticket` out (it timed out); nothing if it already left.
    public mutating func remove(_ ticket: Ticket) {
        steps += 1
        let k = ticket.position - lanes[ticket.lane].base
        guard k >= lanes[ticket.lane].head, k < lanes[ticket.lane].items.count,
              lanes[ticket.lane].items[k].waiter != nil else { return }
        lanes[ticket.lane].items[k].waiter = nil
        count -= 1
        if k == lanes[ticket.lane].head { _ = lanes[ticket.lane].front(&steps) }
    }
}
