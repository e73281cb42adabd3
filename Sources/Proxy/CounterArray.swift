/// Integer counters of a fixed number, in one allocation that its owner frees in its `deinit`.
///
/// Bumping one is a load and a store. A `[Int]` kept in a class property is copy-on-write: every
/// bump checks that its buffer is unique and may retain it, which, a few times a request, showed
/// among the costlier lines of a request's profile.
struct CounterArray {
    private let base: UnsafeMutablePointer<Int>
    let count: Int

    init(count: Int) {
        base = .allocate(capacity: count)
        base.initialize(repeating: 0, count: count)
        self.count = count
    }

    subscript(i: Int) -> Int {
        get { base[i] }
        nonmutating set { base[i] = newValue }
    }

    /// Only the owner, once, in its `deinit`.
    func deallocate() { base.deallocate() }
}
