import Proxy
import Testing

final class FakeWaiter {}

/// The backend group's state machine, driven by events with a hand-moved clock: no sockets.
@Suite("Group state machine")
struct GroupStateTests {
    typealias State = GroupState<FakeConn, FakeWaiter>

    func make(servers: Int = 2, maxActive: Int = 1, maxIdle: Int? = 4, maxFails: Int = 2, queue: Int = 8) -> State {
        State(servers: servers, balance: .roundRobin, maxActive: maxActive, maxIdle: maxIdle,
              maxFails: maxFails, failTimeout: 10_000_000_000, queueSize: queue)
    }

    /// Leases a new connection on whichever server the balancer picks; the server's index.
    func connect(_ s: inout State, excluding: Int? = nil, now: UInt64) -> Int? {
        guard case .connect(let i, _) = s.request(excluding: excluding, fresh: false, now: now) else { return nil }
        return i
    }

    @Test("connects up to the cap on each server in turn, then queues, then refuses")
    func capacity() {
        let clock = FakeClock()
        var s = make(queue: 1)
        let first = connect(&s, now: clock.now), second = connect(&s, now: clock.now)
        #expect(first == 0 && second == 1)
        guard case .wait = s.request(excluding: nil, fresh: false, now: clock.now) else { Issue.record("expected wait"); return }
        #expect(s.enqueue(FakeWaiter(), excluding: nil) != nil)
        guard case .refuse = s.request(excluding: nil, fresh: false, now: clock.now) else { Issue.record("expected refuse"); return }
    }

    @Test("the fast path leases the idle connection and never jumps the queue")
    func fastPath() {
        let clock = FakeClock()
        var s = make(servers: 1, maxActive: 2)
        _ = connect(&s, now: clock.now)
        _ = connect(&s, now: clock.now)
        let a = FakeConn()
        guard case .park = s.released(a, server: 0, reusable: true, succeeded: true, now: clock.now) else { Issue.record("expected park"); return }
        let l = s.leaseIdle(now: clock.now)
        #expect(l?.conn === a && l?.server == 0 && s.servers[0].pool.active == 2)
        #expect(s.leaseIdle(now: clock.now) == nil)
        // With a waiter in the queue, a released connection goes to it, not to the pool.
        _ = s.enqueue(FakeWaiter(), excluding: nil)
        guard case .handOver = s.released(a, server: 0, reusable: true, succeeded: true, now: clock.now) else { Issue.record("expected hand-over"); return }
        #expect(s.queue.isEmpty && s.servers[0].pool.active == 2)
    }

    @Test("a connection that cannot be kept frees its slot for the oldest waiter")
    func closeGrantsConnect() {
        let clock = FakeClock()
        var s = make(servers: 1)
        _ = connect(&s, now: clock.now)
        let w1 = FakeWaiter(), w2 = FakeWaiter()
        _ = s.enqueue(w1, excluding: nil)
        _ = s.enqueue(w2, excluding: nil)
        guard case .close(.connect(let w, 0)?) = s.released(FakeConn(), server: 0, reusable: false, succeeded: true, now: clock.now) else {
            Issue.record("expected close and a connect grant"); return
        }
        #expect(w === w1 && s.queue.count == 1 && s.servers[0].pool.active == 1)
    }

    @Test("a backend that always answers Connection: close is not marked down by scattered failures")
    func connectionCloseBackendStaysUp() {
        let clock = FakeClock()
        var s = make(servers: 1, maxFails: 2)
        for _ in 0..<10 {
            _ = connect(&s, now: clock.now)
            s.serverFailed(0, now: clock.now)  // one request in two fails
            _ = s.released(FakeConn(), server: 0, reusable: false, succeeded: false, now: clock.now)
            _ = connect(&s, now: clock.now)
            // ...and the other completes, on a connection the backend closes.
            _ = s.released(FakeConn(), server: 0, reusable: false, succeeded: true, now: clock.now)
        }
        #expect(s.servers[0].health.isAvailable(now: clock.now))
        #expect(s.servers[0].health.consecutiveFails == 0)
    }

    @Test("a lease given back unused (its client left) is no success: a failing server stays counted")
    func unusedLeaseIsNoSuccess() {
        let clock = FakeClock()
        var s = make(servers: 1, maxFails: 2)
        _ = connect(&s, now: clock.now)
        s.serverFailed(0, now: clock.now)
        _ = s.released(FakeConn(), server: 0, reusable: false, succeeded: false, now: clock.now)
        _ = connect(&s, now: clock.now)
        _ = s.released(FakeConn(), server: 0, reusable: true, succeeded: false, now: clock.now)
        #expect(s.servers[0].health.consecutiveFails == 1)
    }

    @Test("a queued failover retry is never granted the server it left")
    func retryNotGrantedExcluded() {
        let clock = FakeClock()
        var s = make(servers: 2)
        _ = connect(&s, now: clock.now)  // server 0
        _ = connect(&s, now: clock.now)  // server 1
        // A request failed on server 0 and retries: both are full, so it waits.
        guard case .wait = s.request(excluding: 0, fresh: false, now: clock.now) else { Issue.record("expected wait"); return }
        let retry = FakeWaiter()
        _ = s.enqueue(retry, excluding: 0)
        s.serverFailed(0, now: clock.now)
        // Server 0 frees a slot: not for the retry.
        guard case .close(nil) = s.released(FakeConn(), server: 0, reusable: false, succeeded: false, now: clock.now) else {
            Issue.record("server 0's slot went to the retry that left it"); return
        }
        let kept = FakeConn()
        _ = s.request(excluding: nil, fresh: false, now: clock.now)  // someone else takes server 0 again
        guard case .park = s.released(kept, server: 0, reusable: true, succeeded: true, now: clock.now) else {
            Issue.record("server 0's connection went to the retry that left it"); return
        }
        // Server 1 frees one: the retry gets it.
        guard case .handOver(let w) = s.released(FakeConn(), server: 1, reusable: true, succeeded: true, now: clock.now) else {
            Issue.record("expected the retry to get server 1"); return
        }
        #expect(w === retry && s.queue.isEmpty)
    }

    @Test("with one server, exclusion is ignored")
    func singleServerIgnoresExclusion() {
        let clock = FakeClock()
        var s = make(servers: 1)
        #expect(connect(&s, excluding: 0, now: clock.now) == 0)
        let w = FakeWaiter()
        _ = s.enqueue(w, excluding: 0)
        guard case .handOver(let got) = s.released(FakeConn(), server: 0, reusable: true, succeeded: true, now: clock.now) else {
            Issue.record("expected hand-over"); return
        }
        #expect(got === w)
    }

    @Test("a retry is sent to the other server, even when that one is down")
    func retryAvoidsExcluded() {
        var clock = FakeClock()
        var s = make(servers: 2, maxFails: 1)
        s.serverFailed(1, now: clock.now)
        #expect(connect(&s, excluding: 0, now: clock.now) == 1)  // down, but the only other one
        clock.advance(ms: 1)
        #expect(connect(&s, now: clock.now) == 0)  // in rotation
    }

    @Test("a down server's freed slot goes to no waiter while another server is in rotation")
    func downServerSlot() {
        let clock = FakeClock()
        var s = make(servers: 2, maxFails: 1)
        _ = connect(&s, now: clock.now)
        _ = connect(&s, now: clock.now)
        _ = s.enqueue(FakeWaiter(), excluding: nil)
        // Server 0 fails a request and is marked down: its slot is not handed out.
        s.serverFailed(0, now: clock.now)
        guard case .close(nil) = s.released(FakeConn(), server: 0, reusable: false, succeeded: false, now: clock.now) else {
            Issue.record("a down server's slot went to a waiter"); return
        }
        // Server 1 goes down too: now a slot anywhere is better than none.
        s.serverFailed(1, now: clock.now)
        guard case .close(.connect(_, 1)?) = s.released(FakeConn(), server: 1, reusable: false, succeeded: false, now: clock.now) else {
            Issue.record("expected the waiter to get server 1 once all are down"); return
        }
    }

    @Test("a failed connect counts against health and frees its slot for a waiter")
    func connectFailure() {
        let clock = FakeClock()
        var s = make(servers: 1, maxFails: 3)
        _ = connect(&s, now: clock.now)
        let w = FakeWaiter()
        _ = s.enqueue(w, excluding: nil)
        guard case .connect(let got, 0)? = s.connectFailed(server: 0, now: clock.now) else { Issue.record("expected a grant"); return }
        #expect(got === w && s.servers[0].health.consecutiveFails == 1 && s.servers[0].pool.active == 1)
    }

    @Test("a waiter that timed out is never granted; the next one is")
    func timeout() {
        let clock = FakeClock()
        var s = make(servers: 1)
        _ = connect(&s, now: clock.now)
        let w1 = FakeWaiter(), w2 = FakeWaiter()
        let t1 = s.enqueue(w1, excluding: nil)!
        _ = s.enqueue(w2, excluding: nil)
        s.waiterTimedOut(t1)
        #expect(s.queue.count == 1)
        guard case .handOver(let got) = s.released(FakeConn(), server: 0, reusable: true, succeeded: true, now: clock.now) else {
            Issue.record("expected hand-over"); return
        }
        #expect(got === w2)
    }

    @Test("a leased connection found closed frees its slot; idle ones that close leave the pool")
    func deadConnections() {
        let clock = FakeClock()
        var s = make(servers: 1, maxActive: 1)
        _ = connect(&s, now: clock.now)
        let a = FakeConn()
        _ = s.released(a, server: 0, reusable: true, succeeded: true, now: clock.now)
        let l = s.leaseIdle(now: clock.now)
        #expect(l?.conn === a)
        s.leasedDead(server: 0)
        #expect(s.servers[0].pool.active == 0)
        #expect(connect(&s, now: clock.now) == 0)
        let b = FakeConn()
        _ = s.released(b, server: 0, reusable: true, succeeded: true, now: clock.now)
        s.idleClosed(b, server: 0)
        #expect(s.servers[0].pool.idle.isEmpty && s.leaseIdle(now: clock.now) == nil)
    }

    @Test("fresh drops the idle connections and connects; drain closes them and keeps nothing")
    func freshAndDrain() {
        let clock = FakeClock()
        var s = make(servers: 1, maxActive: 2)
        _ = connect(&s, now: clock.now)
        let a = FakeConn()
        _ = s.released(a, server: 0, reusable: true, succeeded: true, now: clock.now)
        guard case .connect(0, let stale) = s.request(excluding: nil, fresh: true, now: clock.now) else { Issue.record("expected connect"); return }
        #expect(stale.count == 1 && stale[0] === a && s.servers[0].pool.idle.isEmpty)
        let b = FakeConn()
        _ = s.released(b, server: 0, reusable: true, succeeded: true, now: clock.now)
        let idle = s.drain()
        #expect(idle.count == 1 && idle[0].conn === b)
        _ = connect(&s, now: clock.now)
        guard case .close = s.released(FakeConn(), server: 0, reusable: true, succeeded: true, now: clock.now) else { Issue.record("kept while draining"); return }
    }

    @Test("a server marked down is skipped until its fail timeout passes")
    func downSkipped() {
        var clock = FakeClock()
        var s = make(servers: 2, maxActive: 10, maxFails: 1)
        s.serverFailed(0, now: clock.now)
        let picks = (0..<3).map { _ in connect(&s, now: clock.now) }
        #expect(picks == [1, 1, 1])
        clock.advance(ms: 10_000)
        let later = (0..<2).map { _ in connect(&s, now: clock.now) }
        #expect(later.contains(0))
    }
}
