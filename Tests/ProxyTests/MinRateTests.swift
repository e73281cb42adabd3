@testable import Proxy
import Testing

@Suite("Minimum data rate")
struct MinRateTests {
    static let sec: UInt64 = 1_000_000_000

    @Test("the grace period is the least a peer gets, however little it moved")
    func grace() {
        var r = MinRate(bytesPerSecond: 240, grace: 5 * Self.sec)
        #expect(r.deadline(now: 100, limit: .max) == 100 + 5 * Self.sec)
        r.record(waitFrom: 0, to: 4 * Self.sec, moved: 10)
        #expect(!r.exceeded)
        #expect(r.deadline(now: 10 * Self.sec, limit: .max) == 11 * Self.sec)
        r.record(waitFrom: 10 * Self.sec, to: 11 * Self.sec, moved: 0)
        #expect(r.exceeded)
    }

    @Test("bytes earn waiting time at the rate; only time spent waiting on the peer counts")
    func earned() {
        var r = MinRate(bytesPerSecond: 1000, grace: 1 * Self.sec)
        r.record(waitFrom: 0, to: Self.sec / 2, moved: 10_000)  // 10 s earned
        #expect(r.deadline(now: 100 * Self.sec, limit: .max) == 100 * Self.sec + 10 * Self.sec - Self.sec / 2)
        r.record(waitFrom: 50 * Self.sec, to: 59 * Self.sec, moved: 0)
        #expect(!r.exceeded)
        r.record(waitFrom: 60 * Self.sec, to: 61 * Self.sec, moved: 0)
        #expect(r.exceeded)
    }

    @Test("the other deadline wins when it comes first; a rate of 0 is off")
    func limits() {
        let r = MinRate(bytesPerSecond: 240, grace: 5 * Self.sec)
        #expect(r.deadline(now: 0, limit: Self.sec) == Self.sec)
        var off = MinRate(bytesPerSecond: 0, grace: 0)
        off.record(waitFrom: 0, to: 1000 * Self.sec, moved: 0)
        #expect(!off.exceeded)
        #expect(off.deadline(now: 0, limit: 7) == 7)
    }
}
