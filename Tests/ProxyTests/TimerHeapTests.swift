import Runtime
import Testing

final class Probe: TimerNode {
    var fired: [UInt64] = []
    let log: (UInt64) -> Void
    init(log: @escaping (UInt64) -> Void) { self.log = log }
    override func timerFired() { log(deadline) }
}

@Suite("Timer heap")
struct TimerHeapTests {
    @Test("fires in deadline order; a later move does not fire early; removal cancels")
    func ordering() {
        let heap = TimerHeap()
        var fired: [Int] = []
        let nodes = (0..<5).map { i in Probe { _ in fired.append(i) } }
        heap.schedule(nodes[0], at: 500)
        heap.schedule(nodes[1], at: 100)
        heap.schedule(nodes[2], at: 300)
        heap.schedule(nodes[3], at: 200)
        heap.schedule(nodes[4], at: 400)
        heap.schedule(nodes[3], at: 450)  // moved later: stays queued at 200, requeues itself
        heap.schedule(nodes[0], at: 50)   // moved earlier: sifts up
        heap.remove(nodes[4])
        #expect(heap.timeoutMillis(now: 0) == 1)
        heap.fire(now: 250)
        #expect(fired == [0, 1])
        heap.fire(now: 449)
        #expect(fired == [0, 1, 2])
        heap.fire(now: 10_000)
        #expect(fired == [0, 1, 2, 3])
        #expect(heap.count == 0)
        #expect(heap.timeoutMillis(now: 0) == -1)
    }
}
