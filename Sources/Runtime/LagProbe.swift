/// Measures how late the loop serves ready work: a timer due every `interval` reports how long
/// after its due time it actually ran. While the loop is idle that is under a millisecond (epoll's
/// timeout is in whole milliseconds, rounded up); while a long turn holds the loop, it is how long
/// every ready connection waited.
public final class LagProbe: TimerNode {
    private let interval: UInt64
    private let report: (UInt64) -> Void
    private var due: UInt64 = 0

    /// `report` gets each lateness in nanoseconds.
    public init(interval: UInt64, report: @escaping (UInt64) -> Void) {
        self.interval = interval
        self.report = report
        super.init()
    }

    public func start() { arm() }

    public func stop() { EventLoop.shared.timers.remove(self) }

    public override func timerFired() {
        let now = monotonicNanos()
        report(now > due ? now - due : 0)
        arm()
    }

    private func arm() {
        due = monotonicNanos() + interval
        EventLoop.shared.timers.schedule(self, at: due)
    }
}
