extension UnsafeMutablePointer {
    /// Moves the first `count` elements into a new allocation of `capacity` and frees this one:
    /// the doubling step of the loop's hand-managed arrays (timer heap, gather list).
    func regrown(count: Int, capacity: Int) -> UnsafeMutablePointer<Pointee> {
        let bigger = UnsafeMutablePointer<Pointee>.allocate(capacity: capacity)
        bigger.moveInitialize(from: self, count: count)
        deallocate()
        return bigger
    }
}
