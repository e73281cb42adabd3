import Foundation
import Glibc
import Testing

/// A request body read ahead into the spool (before a backend is leased) must reach the backend
/// byte for byte, and the bytes the client pipelined after it must be the next request, whatever
/// buffer boundary the body ends on: the inbound buffer's end (16k), one byte past it, a spool
/// buffer's end, `request_buffer`'s end (64k of spool), or past it (the rest streams).
@Suite("Spooled bodies and what is pipelined after them", .serialized)
struct SpoolFramingTests {
    static func body(_ n: Int, seed: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 / 251 &+ seed) } }

    static func chunked(_ body: [UInt8], chunk: Int) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i < body.count {
            let n = min(chunk, body.count - i)
            out += Array((String(n, radix: 16) + "\r\n").utf8) + body[i..<(i + n)] + [13, 10]
            i += n
        }
        return out + Array("0\r\n\r\n".utf8)
    }

    /// Sizes around every boundary for a head of `h` bytes in a 16k inbound buffer with 64k of spool.
    static func sizes(head h: Int) -> [Int] {
        let inbound = 16384 - h
        return [inbound - 1, inbound, inbound + 1, inbound + 16383, inbound + 16384, inbound + 16385,
                inbound + 65535, inbound + 65536, inbound + 65537, inbound + 100_000]
    }

    /// Sends a POST with `body` (framed by Content-Length or chunked) and a GET pipelined right
    /// after it; `split`: the head goes alone first, so the body starts in a read of its own.
    static func roundTrip(port: UInt16, body: [UInt8], chunked: Bool, split: Bool, expect: Bool = false) throws {
        let c = try Conn(port: port)
        let framing = chunked ? "Transfer-Encoding: chunked" : "Content-Length: \(body.count)"
        let head = Array("POST /first HTTP/1.1\r\nHost: t\r\n\(framing)\r\n\(expect ? "Expect: 100-continue\r\n" : "")\r\n".utf8)
        let wire = chunked ? Self.chunked(body, chunk: 5000) : body
        let next = Array("GET /second HTTP/1.1\r\nHost: t\r\n\r\n".utf8)
        if split || expect {
            try c.send(head)
            usleep(50_000)
            try c.send(wire + next)
        } else {
            try c.send(head + wire + next)
        }
        let first = try c.readResponse(method: "POST")
        #expect(first.status == 200)
        #expect(first.text == "/first \(DigestBackend.digest(body))\n", "body of \(body.count) (chunked \(chunked), split \(split))")
        let second = try c.readResponse()
        #expect(second.status == 200)
        #expect(second.text == "/second len=0 sum=cbf29ce484222325\n", "after a body of \(body.count) (chunked \(chunked), split \(split))")
    }

    @Test("Content-Length bodies at every buffer boundary, a request pipelined after each", arguments: [false, true])
    func lengthBodies(split: Bool) throws {
        let be = try DigestBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port]))
        let headLength = "POST /first HTTP/1.1\r\nHost: t\r\nContent-Length: 00000\r\n\r\n".utf8.count
        for (i, n) in Self.sizes(head: headLength).enumerated() {
            try Self.roundTrip(port: gh.port, body: Self.body(n, seed: i), chunked: false, split: split)
        }
    }

    @Test("chunked bodies at every buffer boundary, a request pipelined after each", arguments: [false, true])
    func chunkedBodies(split: Bool) throws {
        let be = try DigestBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port]))
        for (i, n) in Self.sizes(head: 60).enumerated() {
            try Self.roundTrip(port: gh.port, body: Self.body(n, seed: i), chunked: true, split: split)
        }
    }

    @Test("Expect: 100-continue bodies in and beyond the spool, a request pipelined after each")
    func expectContinue() throws {
        let be = try DigestBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port]))
        for (i, n) in [10, 20000, 70000, 90000].enumerated() {
            try Self.roundTrip(port: gh.port, body: Self.body(n, seed: i), chunked: i % 2 == 1, split: true, expect: true)
        }
    }

    @Test("buffer memory goes back to zero once every connection is done, whatever the way it ended")
    func buffersReturn() throws {
        let be = try DigestBackend()
        let demo = try DemoBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port]))
        let gh2 = try GatehouseProcess(config: GatehouseProcess.config(backends: [demo.port]))
        // Whole exchanges with spooled bodies.
        try Self.roundTrip(port: gh.port, body: Self.body(70000, seed: 1), chunked: false, split: false)
        // A client that leaves with its body half sent, and one that leaves mid-response.
        do {
            let c = try Conn(port: gh.port)
            try c.send("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n" + String(repeating: "x", count: 50000))
            usleep(100_000)
        }
        do {
            let c = try Conn(port: gh2.port, smallReceiveBuffer: true)
            try c.send("GET /?size=3000000 HTTP/1.1\r\nHost: t\r\n\r\n")
            usleep(300_000)
        }
        usleep(500_000)
        for g in [gh, gh2] {
            #expect(try g.metric("gatehouse_buffer_bytes{direction=\"client\"}") == 0)
            #expect(try g.metric("gatehouse_buffer_bytes{direction=\"upstream\"}") == 0)
        }
    }
}
