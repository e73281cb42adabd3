import Proxy
import Testing

@Suite("Error log rate limit")
struct LogRateLimitTests {
    @Test("a burst is written, then one line per interval, and the next line written tells how many were held back")
    func burstThenOnePerInterval() {
        var l = LogRateLimit(burst: 3, interval: 1_000)
        let first = (0..<10).map { _ in l.admit(7, now: 100) }
        #expect(first.filter(\.write).count == 3)
        #expect(first.allSatisfy { $0.suppressed == 0 })
        #expect(l.admit(7, now: 600).write == false)  // half an interval on: still nothing
        let next = l.admit(7, now: 1_100)
        #expect(next.write && next.suppressed == 8)
        #expect(l.admit(7, now: 1_200).write == false)
        // A long quiet spell earns the whole burst back, and no more.
        let later = (0..<5).map { _ in l.admit(7, now: 1_000_000) }
        #expect(later.filter(\.write).count == 3)
        #expect(later[0].suppressed == 1)
    }

    @Test("keys are limited apart: a flood of one kind of line does not hide another")
    func keysApart() {
        var l = LogRateLimit(burst: 1, interval: 1_000)
        #expect(l.admit(1, now: 0).write)
        #expect(!l.admit(1, now: 1).write)
        #expect(l.admit(2, now: 2).write)
    }
}
