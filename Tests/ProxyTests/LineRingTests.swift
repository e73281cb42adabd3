@testable import Proxy
import Testing

/// The access log's ring, without sockets: bounded, drops counted, order kept, batches of whole lines.
@Suite("Access log ring")
struct LineRingTests {
    static func append(_ r: LineRing, _ s: String) -> Bool {
        Array(s.utf8).withUnsafeBytes { r.append($0) }
    }

    /// Takes everything out a batch of at most `max` bytes at a time; each batch checked to end a line.
    static func drain(_ r: LineRing, max: Int) -> [String] {
        var batches: [String] = []
        while !r.isEmpty {
            let (a, b) = r.front(max: max)
            let bytes = Array(a) + Array(b)
            #expect(bytes.count <= max && bytes.last == 0x0A, "a batch of whole lines within the bound")
            batches.append(String(decoding: bytes, as: UTF8.self))
            r.consume(bytes.count)
        }
        return batches
    }

    @Test("lines come out in the order they went in, in batches of whole lines, across the wrap")
    func order() {
        let r = LineRing(capacity: 100)
        var sent: [String] = []
        var received = ""
        var full = 0
        for i in 0..<200 {
            let line = "line \(i) " + String(repeating: "x", count: i % 13) + "\n"
            if !Self.append(r, line) {
                full += 1
                // Room made a batch at a time (the ring is seldom emptied, so lines wrap).
                while !Self.append(r, line) {
                    let (a, b) = r.front(max: 30)
                    received += String(decoding: Array(a) + Array(b), as: UTF8.self)
                    r.consume(a.count + b.count)
                }
            }
            sent.append(line)
        }
        received += Self.drain(r, max: 30).joined()
        #expect(received == sent.joined())
        #expect(full > 10 && r.lines >= 200 + full && r.dropped == r.lines - 200, "a line refused when full counts as made and dropped")
    }

    @Test("bounded: a line that does not fit is dropped and counted, never half written; room comes back as batches go")
    func bounded() {
        let r = LineRing(capacity: 64)
        let line = "123456789\n"  // 10 bytes
        for _ in 0..<6 { #expect(Self.append(r, line)) }
        #expect(r.count == 60)
        #expect(!Self.append(r, line), "60 + 10 > 64")
        #expect(Self.append(r, "abc\n"), "a shorter one still fits")
        #expect(!Self.append(r, "z\n"))
        #expect(r.count == 64 && r.lines == 9 && r.dropped == 2)
        let (a, b) = r.front(max: 25)
        #expect(a.count + b.count == 20, "two whole lines, not 25 bytes")
        r.consume(20)
        #expect(Self.append(r, line) && Self.append(r, line), "wrapped around the end")
        #expect(Self.drain(r, max: 1000) == [String(repeating: line, count: 4) + "abc\n" + line + line])
    }

    @Test("a line longer than a batch still goes out (cut at the bound) rather than block the ring")
    func longLine() {
        let r = LineRing(capacity: 64)
        #expect(Self.append(r, String(repeating: "y", count: 39) + "\n"))
        let (a, b) = r.front(max: 16)
        #expect(a.count + b.count == 16)
    }

    @Test("an emptied ring starts again at its first byte (the memory the last batch warmed), not where it left off")
    func restartsWhenEmpty() {
        let r = LineRing(capacity: 64)
        #expect(Self.append(r, String(repeating: "a", count: 49) + "\n"))
        r.consume(50)
        #expect(Self.append(r, String(repeating: "b", count: 29) + "\n"))
        let (a, b) = r.front(max: 64)
        #expect(a.count == 30 && b.isEmpty, "one span from the start; left where it was, 30 bytes at 50 would have wrapped")
    }

    @Test("lines thrown away (the supervisor gone) count as dropped")
    func discard() {
        let r = LineRing(capacity: 64)
        for _ in 0..<3 { #expect(Self.append(r, "abc\n")) }
        r.discardAll()
        #expect(r.isEmpty && r.lines == 3 && r.dropped == 3)
    }
}
