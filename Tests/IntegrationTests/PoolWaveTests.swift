import Foundation
import Glibc
import Testing

extension LoadTests {
    /// The default pool under waves of clients: the connections a wave opened are still there for
    /// the next wave, instead of being closed and opened again every 50 ms. Nested in the Load
    /// suite so its 5,000 clients never share the machine with another load.
    @Suite("Pool sizing", .serialized)
    struct PoolWaveTests {
        static let clients = 5_000

        @Test("5,000 clients in waves on a 50 ms backend, default settings: after the first wave, under 0.01 connects per request")
        func wavesReuseConnections() throws {
            let limit = raiseOpenFileLimit(wanted: 12_000)
            try #require(limit >= 12_000, "open-file limit \(limit): 5,000 clients need about 11,000 descriptors here")
            let be = try DemoBackend(["--delay-ms", "50"])
            let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port]))
            let clients = try ManyClients(port: gh.port, count: Self.clients)
            let connects = "gatehouse_upstream_connects_total{backend=\"b\",server=\"127.0.0.1:\(be.port)\"}"
            let started = Date()
            let first = clients.roundTrip("GET /w HTTP/1.1\r\nHost: t\r\n\r\n", timeout: 10)
            #expect(first.filter { $0 == 200 }.count == Self.clients)
            let afterFirst = try gh.metric(connects)
            #expect(afterFirst >= 1_000, "the first wave needs its connections: \(afterFirst)")
            #expect(try gh.metric("gatehouse_upstream_idle_target{backend=\"b\",server=\"127.0.0.1:\(be.port)\"}") == afterFirst)
            let waves = 8
            var ok = 0
            for _ in 0..<waves {
                ok += clients.roundTrip("GET /w HTTP/1.1\r\nHost: t\r\n\r\n", timeout: 10).filter { $0 == 200 }.count
            }
            #expect(ok == waves * Self.clients)
            let perRequest = (try gh.metric(connects) - afterFirst) / Double(waves * Self.clients)
            #expect(perRequest < 0.01, "\(perRequest) upstream connects per request after the first wave")
            // Every one back in the pool once the last exchanges finish (a client may read its answer
            // a moment before the loop has put that answer's connection back).
            let idle = "gatehouse_upstream_connections{backend=\"b\",server=\"127.0.0.1:\(be.port)\",state=\"idle\"}"
            // (Against every connection opened, not those of the first wave: a later wave may open
            // one or two, which the per-request bound above allows.)
            let opened = try gh.metric(connects)
            let settled = try eventually(2) { try gh.metric(idle) == opened }
            let idleNow = try gh.metric(idle)
            #expect(settled, "\(idleNow) idle, \(opened) opened")
            #expect(Date().timeIntervalSince(started) < 30)
        }
    }
}
