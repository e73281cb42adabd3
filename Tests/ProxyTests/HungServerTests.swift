import Proxy
import Testing

/// A server that takes requests and answers none leaves rotation at its first head timeout, on a
/// hand-moved clock.
extension GroupStateTests {
    static let headTimeoutMs: UInt64 = 1_000

    /// Server 0's head wait begun at `since` ran out now: whether it was found hung.
    func hung(_ s: inout State, since: UInt64, _ clock: FakeClock) -> Bool {
        s.headTimedOut(server: 0, waitingSince: since, now: clock.now)
    }

    @Test("a head timeout on a server that answered nothing since the request went takes it out at once")
    func hungServerOutAtOnce() {
        var clock = FakeClock()
        var s = make(servers: 2, maxActive: 10, maxFails: 3)
        let sent = clock.now
        clock.advance(ms: Self.headTimeoutMs)
        #expect(hung(&s, since: sent, clock))
        #expect(!s.servers[0].health.isAvailable(now: clock.now))
        s.serverFailed(0, now: clock.now)  // the failure itself is still counted, as any other
        #expect(!s.servers[0].health.isAvailable(now: clock.now))
        var picks: [Int?] = []
        for _ in 0..<3 { picks.append(connect(&s, now: clock.now)) }
        #expect(picks == [1, 1, 1])
        // After fail_timeout it is tried again.
        clock.advance(ms: 10_000)
        #expect(s.servers[0].health.isAvailable(now: clock.now))
    }

    @Test("a server that answered another request meanwhile is slow, not hung: the timeout is one failure")
    func slowRequestIsOneFailure() {
        var clock = FakeClock()
        var s = make(servers: 2, maxActive: 10, maxFails: 3)
        let sent = clock.now
        clock.advance(ms: 300)
        s.answered(server: 0, now: clock.now)
        clock.advance(ms: Self.headTimeoutMs - 300)
        #expect(!hung(&s, since: sent, clock))
        s.serverFailed(0, now: clock.now)
        #expect(s.servers[0].health.isAvailable(now: clock.now) && s.servers[0].health.consecutiveFails == 1)
    }

    @Test("an answer that came before the request was sent does not vouch for the server")
    func answerBeforeSendDoesNotCount() {
        var clock = FakeClock()
        var s = make(servers: 2, maxActive: 10, maxFails: 3)
        s.answered(server: 0, now: clock.now)
        clock.advance(ms: 5)
        let sent = clock.now
        clock.advance(ms: Self.headTimeoutMs)
        #expect(hung(&s, since: sent, clock))
        #expect(!s.servers[0].health.isAvailable(now: clock.now))
    }

    @Test("later timeouts on a server already out keep it out and never shorten its time out")
    func hungStaysOut() {
        var clock = FakeClock()
        var s = make(servers: 2, maxActive: 10, maxFails: 3)
        let sent = clock.now
        clock.advance(ms: Self.headTimeoutMs)
        #expect(hung(&s, since: sent, clock))
        let until = s.servers[0].health.downUntil
        #expect(hung(&s, since: sent, clock))
        #expect(s.servers[0].health.downUntil == until)
        // A success (a response relayed whole) brings it back, as for any failure.
        _ = connect(&s, excluding: 1, now: clock.now)
        _ = s.released(FakeConn(), server: 0, reusable: true, succeeded: true, now: clock.now)
        #expect(s.servers[0].health.isAvailable(now: clock.now))
    }
}
