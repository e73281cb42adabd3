/// A growable ring of jobs waiting to run on the loop. Single-threaded by construction.
struct JobQueue {
    private var storage: UnsafeMutablePointer<UnownedJob>
    private var capacity: Int
    private var head = 0
    private(set) var count = 0

    init(capacity: Int = 1024) {
        self.capacity = capacity
        storage = .allocate(capacity: capacity)
    }

    var isEmpty: Bool { count == 0 }

    mutating func push(_ job: UnownedJob) {
        if count == capacity { grow() }
        (storage + ((head + count) & (capacity - 1))).initialize(to: job)
        count += 1
    }

    mutating func pop() -> UnownedJob? {
        guard count > 0 else { return nil }
        let job = (storage + head).move()
        head = (head + 1) & (capacity - 1)
        count -= 1
        return job
    }

    private mutating func grow() {
        let newCapacity = capacity * 2
        let fresh = UnsafeMutablePointer<UnownedJob>.allocate(capacity: newCapacity)
        for i in 0..<count {
            (fresh + i).initialize(to: (storage + ((head + i) & (capacity - 1))).move())
        }
        storage.deallocate()
        storage = fresh
        capacity = newCapacity
        head = 0
    }
}
