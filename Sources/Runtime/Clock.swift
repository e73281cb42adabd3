import Glibc

/// Monotonic nanoseconds. The loop caches one reading per turn (`EventLoop.now`) so that deadlines
/// cost no syscall; state machines take `now` as a parameter so tests inject their own clock.
@inlinable
public func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// Seconds since the Unix epoch, with the fraction (for timestamps an operator reads).
public func wallClockSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Nanosecond helpers for readable deadlines.
public extension UInt64 {
    static func millis(_ n: UInt64) -> UInt64 { n &* 1_000_000 }
    static func seconds(_ n: UInt64) -> UInt64 { n &* 1_000_000_000 }
}
