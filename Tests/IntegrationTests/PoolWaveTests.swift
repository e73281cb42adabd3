import Foundation
import Glibc
import Testing

/// The default pool under waves of clients: the connections a wave opened are still there for
/// the next wave, instead of being closed and opened again every 50 ms.
@Suite("Pool sizing")
struct PoolWaveTests {
    @Test("1,500 clients in waves on a 50 ms backend, default settings: after the first wave, under 0.01 connects per request")
    func wavesReuseConnections() throws {
        let be = try DemoBackend(["--delay-ms", "50"])
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port]))
        let clients = try ManyClients(port: gh.port, count: 1_500)
        let connects = "gatehouse_upstream_connects_total{backend=\"b\",server=\"127.0.0.1:\(be.port)\"}"
        let started = Date()
        let first = clients.roundTrip("GET /w HTTP/1.1\r\nHost: t\r\n\r\n", timeout: 10)
        #expect(first.filter { $0 == 200 }.count == 1_500)
        let afterFirst = try gh.metric(connects)
        #expect(afterFirst >= 1_000, "the first wave needs its connections: \(afterFirst)")
        #expect(try gh.metric("gatehouse_upstream_idle_target{backend=\"b\",server=\"127.0.0.1:\(be.port)\"}") == afterFirst)
        let waves = 8
        var ok = 0
        for _ in 0..<waves {
            ok += clients.roundTrip("GET /w HTTP/1.1\r\nHost: t\r\n\r\n", timeout: 10).filter { $0 == 200 }.count
        }
        #expect(ok == waves * 1_500)
        let perRequest = (try gh.metric(connects) - afterFirst) / Double(waves * 1_500)
        #expect(perRequest < 0.01, "\(perRequest) upstream connects per request after the first wave")
        #expect(try gh.metric("gatehouse_upstream_connections{backend=\"b\",server=\"127.0.0.1:\(be.port)\",state=\"idle\"}") == afterFirst)
        #expect(Date().timeIntervalSince(started) < 15)
    }
}
