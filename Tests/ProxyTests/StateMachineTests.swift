import Proxy
import Testing

final class FakeConn {}

/// A clock the tests move by hand.
struct FakeClock {
    var now: UInt64 = 1_000_000_000
    mutating func advance(ms: UInt64) { now += ms * 1_000_000 }
}

@Suite("Pool state machine")
struct PoolStateTests {
    @Test("leases idle connections last-in first-out, connects up to the cap, then is full")
    func leasing() {
        var p = PoolState<FakeConn>(maxActive: 2, maxIdle: 2)
        guard case .connect = p.lease() else { Issue.record("expected connect"); return }
        guard case .connect = p.lease() else { Issue.record("expected connect"); return }
        guard case .full = p.lease() else { Issue.record("expected full"); return }
        let a = FakeConn(), b = FakeConn()
        let ra = p.release(a, reusable: true), rb = p.release(b, reusable: true)
        #expect(ra == .park && rb == .park)
        #expect(p.active == 0 && p.idle.count == 2)
        guard case .reuse(let c) = p.lease() else { Issue.record("expected reuse"); return }
        #expect(c === b)
    }

    @Test("closes what is not reusable or over max idle, and frees the slot")
    func releasing() {
        var p = PoolState<FakeConn>(maxActive: 3, maxIdle: 1)
        for _ in 0..<3 { _ = p.lease() }
        let r1 = p.release(FakeConn(), reusable: false)
        let r2 = p.release(FakeConn(), reusable: true)
        let r3 = p.release(FakeConn(), reusable: true)
        #expect(r1 == .close && r2 == .park && r3 == .close)
        #expect(p.active == 0 && p.idle.count == 1)
        _ = p.lease()  // reuses the idle one
        guard case .connect = p.lease() else { Issue.record("expected connect"); return }
        p.connectFailed()
        #expect(p.active == 1)
    }

    @Test("an idle connection that closes leaves the pool")
    func removeIdle() {
        var p = PoolState<FakeConn>(maxActive: 2, maxIdle: 2)
        _ = p.lease()
        let a = FakeConn()
        _ = p.release(a, reusable: true)
        p.removeIdle(a)
        #expect(p.idle.isEmpty)
        guard case .connect = p.lease() else { Issue.record("expected connect"); return }
    }

    @Test("reuse checklist: every condition must hold")
    func checklist() {
        let ok = ReuseChecklist(responseComplete: true, requestBodySent: true, serverKeepAlive: true, extraBytes: false,
                                errorSeen: false, requestsServed: 1, maxRequests: 100, draining: false)
        #expect(ok.reusable)
        var c = ok; c.responseComplete = false; #expect(!c.reusable)
        c = ok; c.requestBodySent = false; #expect(!c.reusable)
        c = ok; c.serverKeepAlive = false; #expect(!c.reusable)
        c = ok; c.extraBytes = true; #expect(!c.reusable)
        c = ok; c.errorSeen = true; #expect(!c.reusable)
        c = ok; c.requestsServed = 100; #expect(!c.reusable)
        c = ok; c.draining = true; #expect(!c.reusable)
    }
}

@Suite("Wait queue")
struct WaitQueueTests {
    @Test("FIFO, bounded, with removal of timed-out waiters")
    func fifo() {
        var q = WaitQueue<FakeConn>(capacity: 3)
        let a = FakeConn(), b = FakeConn(), c = FakeConn()
        let ta = q.push(a), tb = q.push(b), tc = q.push(c)
        let overflow = q.push(FakeConn())
        #expect(ta != nil && tb != nil && tc != nil && overflow == nil)
        q.remove(tb!)
        q.remove(tb!)  // twice: nothing more
        #expect(q.count == 2)
        let p1 = q.pop(), p2 = q.pop(), p3 = q.pop()
        #expect(p1 === a && p2 === c && p3 == nil && q.isEmpty)
        q.remove(ta!)  // already left: nothing
        #expect(q.count == 0)
        for _ in 0..<1000 {
            let ok = q.push(a) != nil
            let back = q.pop()
            #expect(ok && back === a)
        }
    }

    @Test("a mass timeout removes each waiter in constant steps")
    func massTimeout() {
        let n = 10_000
        var q = WaitQueue<FakeConn>(capacity: n)
        let ws = (0..<n).map { _ in FakeConn() }
        let tickets = ws.map { q.push($0)! }
        for t in tickets { q.remove(t) }  // timers fire in deadline order: oldest first
        #expect(q.isEmpty)
        #expect(q.steps <= 4 * n, "\(q.steps) steps to remove \(n) waiters")
        // Newest first: still linear.
        let before = q.steps
        let again = ws.map { q.push($0)! }
        for t in again.reversed() { q.remove(t) }
        #expect(q.isEmpty && q.pop() == nil)
        #expect(q.steps - before <= 4 * n, "\(q.steps - before) steps to remove \(n) waiters newest first")
    }

    @Test("waiters that exclude a server are skipped for it, in arrival order otherwise")
    func exclusion() {
        var q = WaitQueue<FakeConn>(capacity: 10, servers: 2)
        let a = FakeConn(), b = FakeConn(), c = FakeConn()
        _ = q.push(a, excluding: 0)
        _ = q.push(b)
        _ = q.push(c, excluding: 1)
        let forZero = q.pop(for: 0)
        #expect(forZero === b)
        let forZeroAgain = q.pop(for: 0)
        #expect(forZeroAgain === c)
        #expect(q.pop(for: 0) == nil && q.count == 1)
        let forOne = q.pop(for: 1)
        #expect(forOne === a && q.isEmpty)
    }
}

@Suite("Passive health and balancing")
struct HealthTests {
    @Test("down after max_fails in a row, back after fail_timeout; a success clears the count")
    func health() {
        var clock = FakeClock()
        var h = HealthState(maxFails: 3, failTimeout: 10_000_000_000)
        h.failed(now: clock.now)
        h.failed(now: clock.now)
        h.succeeded()
        h.failed(now: clock.now)
        h.failed(now: clock.now)
        #expect(h.isAvailable(now: clock.now))
        let down = h.failed(now: clock.now)
        #expect(down)
        #expect(!h.isAvailable(now: clock.now))
        clock.advance(ms: 9_999)
        #expect(!h.isAvailable(now: clock.now))
        clock.advance(ms: 1)
        #expect(h.isAvailable(now: clock.now))
    }

    @Test("round-robin rotates over available servers with capacity and honours exclusion")
    func roundRobin() {
        var b = Balancer(method: .roundRobin)
        var picks: [Int] = []
        for _ in 0..<6 {
                let pick = b.pick(count: 3, excluding: nil, available: { $0 != 1 }, capacity: { _ in true }, load: { _ in 0 })
            picks.append(pick!)
        }
        #expect(picks == [0, 2, 0, 2, 0, 2])
        let e = b.pick(count: 3, excluding: 0, available: { $0 != 2 }, capacity: { _ in true }, load: { _ in 0 })
        let none = b.pick(count: 2, excluding: nil, available: { _ in true }, capacity: { _ in false }, load: { _ in 0 })
        #expect(e == 1 && none == nil)
    }

    @Test("least connections picks the least loaded")
    func leastConn() {
        var b = Balancer(method: .leastConnections)
        let load = [5, 1, 3]
        let first = b.pick(count: 3, excluding: nil, available: { _ in true }, capacity: { _ in true }, load: { load[$0] })
        let second = b.pick(count: 3, excluding: 1, available: { _ in true }, capacity: { _ in true }, load: { load[$0] })
        #expect(first == 1 && second == 2)
    }
}

@Suite("Client connection state machine")
struct ClientStateTests {
    func make(_ clock: FakeClock) -> ClientConnectionState {
        ClientConnectionState(keepAliveTimeout: 60_000_000_000, headerTimeout: 10_000_000_000,
                              parkAfter: 200_000_000, maxRequests: 3, now: clock.now)
    }

    @Test("after a response: next buffered, brief wait, then park until the keep-alive deadline")
    func keepAlive() {
        var clock = FakeClock()
        var s = make(clock)
        #expect(s.firstWait(now: clock.now) == clock.now + 200_000_000)
        clock.advance(ms: 5)
        let a1 = s.responseDone(keepAlive: true, draining: false, buffered: true, now: clock.now)
        #expect(a1 == .nextBuffered)
        clock.advance(ms: 5)
        let start = clock.now
        let a2 = s.responseDone(keepAlive: true, draining: false, buffered: false, now: clock.now)
        #expect(a2 == .waitNext(until: start + 200_000_000))
        clock.advance(ms: 200)
        #expect(s.waitExpired(now: clock.now) == .park(until: start + 60_000_000_000))
        clock.advance(ms: 60_000)
        #expect(s.waitExpired(now: clock.now) == .close)
    }

    @Test("closes on Connection: close, on drain, and after keepalive_requests")
    func closing() {
        let clock = FakeClock()
        var s = make(clock)
        let c1 = s.responseDone(keepAlive: false, draining: false, buffered: false, now: clock.now)
        s = make(clock)
        let c2 = s.responseDone(keepAlive: true, draining: true, buffered: false, now: clock.now)
        #expect(c1 == .close && c2 == .close)
        s = make(clock)
        _ = s.responseDone(keepAlive: true, draining: false, buffered: true, now: clock.now)
        _ = s.responseDone(keepAlive: true, draining: false, buffered: true, now: clock.now)
        let c3 = s.responseDone(keepAlive: true, draining: false, buffered: true, now: clock.now)
        #expect(c3 == .close)
    }

    @Test("before the first request the header timeout bounds the idle time")
    func firstRequest() {
        var clock = FakeClock()
        let s = make(clock)
        clock.advance(ms: 10_000)
        #expect(s.waitExpired(now: clock.now) == .close)
        #expect(s.headerDeadline(now: clock.now) == clock.now + 10_000_000_000)
    }
}
