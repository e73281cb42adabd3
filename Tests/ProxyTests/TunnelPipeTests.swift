@testable import Proxy
import Testing

/// One direction of a tunnel, without sockets: held bytes go before new reads, and the source's
/// end is passed on only after everything it sent.
@Suite("Tunnel pipe")
struct TunnelPipeTests {
    @Test("reads only when nothing is held, writes what is held first")
    func order() {
        var p = TunnelPipe()
        #expect(p.next(sourceReadable: false) == .wait)
        #expect(p.next(sourceReadable: true) == .read)
        p.read(100)
        #expect(p.next(sourceReadable: true) == .write)
        p.wrote(60)
        #expect(p.next(sourceReadable: true) == .write)  // the rest first: backpressure
        p.wrote(40)
        #expect(p.next(sourceReadable: true) == .read)
        #expect(p.moved == 100)
    }

    @Test("bytes read before the switch (held at start) go first")
    func heldAtStart() {
        let p = TunnelPipe(held: 7)
        #expect(p.next(sourceReadable: false) == .write)
    }

    @Test("the source's end goes on after its last bytes, once; then the direction is done")
    func halfClose() {
        var p = TunnelPipe()
        p.read(5)
        p.read(0)
        #expect(p.next(sourceReadable: false) == .write)
        #expect(!p.isDone)
        p.wrote(5)
        #expect(p.next(sourceReadable: true) == .shutDestination)
        p.shut()
        #expect(p.next(sourceReadable: true) == .done)
        #expect(p.isDone)
    }
}

/// A 101 may name only protocols the client offered, and never h2c.
@Suite("Upgrade tokens")
struct UpgradeTokensTests {
    static func tokens(_ s: String) -> [ArraySlice<UInt8>] {
        s.split(separator: ",").map { ArraySlice(Array($0.trimmingCharacters(in: .whitespaces).utf8)) }
    }

    @Test("agreed", arguments: [
        ("websocket", "websocket", true), ("websocket, foo/2", "FOO/2", true), ("websocket", "WebSocket", true),
        ("websocket", "other", false), ("websocket", "", false), ("websocket, h2c", "h2c", false), ("a", "a, b", false),
    ])
    func agreed(_ c: (String, String, Bool)) {
        #expect(UpgradeTokens.agreed(offered: Self.tokens(c.0), chosen: Self.tokens(c.1)) == c.2, "\(c)")
    }
}

/// The HTTP/2 misbehaviour allowance, on an injected clock.
@Suite("Leaky bucket")
struct LeakyBucketTests {
    @Test("a burst past the limit trips it; the same events spread out are forgiven")
    func bucket() {
        var burst = LeakyBucket(limit: 100, perSecond: 10)
        var tripped = false
        for i in 0..<120 { tripped = burst.add(now: 1_000_000_000 + UInt64(i) * 1_000_000) }  // 120 in 0.12 s
        #expect(tripped)
        var spread = LeakyBucket(limit: 100, perSecond: 10)
        var ever = false
        for i in 0..<1_000 { ever = spread.add(now: 1_000_000_000 + UInt64(i) * 200_000_000) || ever }  // 5 a second
        #expect(!ever && spread.level < 2)
    }
}
