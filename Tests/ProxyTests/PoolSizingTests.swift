import Proxy
import Testing

/// A pool that sizes itself: idle connections follow recent demand, driven by waves of requests
/// on a hand-moved clock.
extension GroupStateTests {
    /// What one wave did to the pool.
    struct Wave {
        var connects = 0
        var closed = 0
    }

    /// `n` requests lease at once; `after` ms later they all come back reusable, and the surplus
    /// the state machine names after each release is closed, as `UpstreamGroup.release` does.
    func wave(_ s: inout State, _ n: Int, _ clock: inout FakeClock, after ms: UInt64 = 50) -> Wave {
        var w = Wave()
        var leased: [(FakeConn, Int)] = []
        for _ in 0..<n {
            switch s.request(excluding: nil, fresh: false, now: clock.now) {
            case .reuse(let c, let i): leased.append((c, i))
            case .connect(let i, _):
                w.connects += 1
                leased.append((FakeConn(), i))
            default: Issue.record("no connection for the wave")
            }
        }
        clock.advance(ms: ms)
        for (c, i) in leased {
            if case .close = s.released(c, server: i, reusable: true, succeeded: true, now: clock.now) { w.closed += 1 }
            w.closed += s.surplusIdle(server: i).count
        }
        return w
    }

    func open(_ s: State, _ i: Int = 0) -> Int { s.servers[i].pool.active + s.servers[i].pool.idle.count }

    @Test("a wave of N leases finds the previous wave's N connections idle: no connects after the first")
    func wavesReuse() {
        var clock = FakeClock()
        var s = make(servers: 1, maxActive: 10_000, maxIdle: nil)
        let first = wave(&s, 1_000, &clock)
        #expect(first.connects == 1_000 && first.closed == 0 && s.servers[0].pool.idle.count == 1_000)
        // Waves every 50 ms for 12 s: demand periods pass, demand stays the same.
        var later = Wave()
        for _ in 0..<240 {
            let w = wave(&s, 1_000, &clock)
            later.connects += w.connects
            later.closed += w.closed
        }
        #expect(later.connects == 0 && later.closed == 0)
        #expect(s.servers[0].pool.idle.count == 1_000)
    }

    @Test("when demand drops, idle connections are closed over time down to the new demand")
    func shrinksToDemand() {
        var clock = FakeClock()
        var s = make(servers: 1, maxActive: 10_000, maxIdle: nil)
        _ = wave(&s, 1_000, &clock)
        // Now 10 at a time, every 50 ms. While the burst's period lasts nothing is given back (the
        // next burst may come); after one quieter period half the surplus is; after a minute all of it.
        var closed = 0
        for _ in 0..<90 { closed += wave(&s, 10, &clock).closed }  // 4.5 s
        #expect(closed == 0 && open(s) == 1_000)
        for _ in 0..<30 { closed += wave(&s, 10, &clock).closed }  // 6 s: the burst's period ended
        #expect(open(s) == 1_000)
        for _ in 0..<90 { closed += wave(&s, 10, &clock).closed }  // 10.5 s: one quieter period ended
        #expect(open(s) == 505, "\(open(s))")
        for _ in 0..<1_200 { closed += wave(&s, 10, &clock).closed }  // a minute
        #expect(open(s) == 10 && closed == 990, "\(open(s)) open, \(closed) closed")
        #expect(wave(&s, 10, &clock).connects == 0)
    }

    @Test("a quiet stretch is caught up at the next event: the estimate has halved once per period")
    func quietStretch() {
        var clock = FakeClock()
        var s = make(servers: 1, maxActive: 10_000, maxIdle: nil)
        _ = wave(&s, 1_024, &clock)
        clock.advance(ms: 20_000)  // the burst's period ends, then three without a request
        let w = wave(&s, 1, &clock, after: 0)
        #expect(w.connects == 0)
        #expect(s.servers[0].pool.demand.estimate == 1_024 / 8, "\(s.servers[0].pool.demand.estimate)")
        // Trimming is spread over releases: a few closes each, never the whole surplus at once.
        #expect(w.closed == PoolDefaults.trimPerRelease)
    }

    @Test("an explicit max_idle bounds the idle connections, whatever the demand")
    func maxIdleBounds() {
        var clock = FakeClock()
        var s = make(servers: 1, maxActive: 10_000, maxIdle: 100)
        let first = wave(&s, 1_000, &clock)
        #expect(first.closed == 900 && s.servers[0].pool.idle.count == 100)
        #expect(wave(&s, 1_000, &clock).connects == 900)
    }

    @Test("idle connections are kept per server, each by its own demand")
    func perServer() {
        var clock = FakeClock()
        var s = make(servers: 2, maxActive: 10_000, maxIdle: nil)
        _ = wave(&s, 400, &clock)  // round robin: 200 each
        #expect(s.servers[0].pool.idle.count == 200 && s.servers[1].pool.idle.count == 200)
        #expect(wave(&s, 400, &clock).connects == 0)
    }
}
