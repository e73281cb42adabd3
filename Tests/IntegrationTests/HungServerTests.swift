import Foundation
import Glibc
import Testing

/// A backend that accepts and never answers, beside a healthy one: it leaves rotation at the first
/// head timeout, and the requests still waiting on it go to the healthy one then, not each after
/// its own `upstream_header`.
@Suite("Hung server")
struct HungServerTests {
    /// A listening socket nobody accepts from: connects succeed, requests are taken, nothing answers.
    static func silentListener() -> (fd: Int32, port: UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = listen(fd, 128)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return (fd, UInt16(bigEndian: addr.sin_port))
    }

    /// Latencies and statuses of requests made from several threads.
    final class Results: @unchecked Sendable {
        private let lock = NSLock()
        private(set) var items: [(status: Int, seconds: Double)] = []
        func add(_ status: Int, _ seconds: Double) {
            lock.lock()
            items.append((status, seconds))
            lock.unlock()
        }
    }

    @Test("concurrent GETs: all 200 from the healthy server; only the first stuck one waits the whole upstream_header; the silent server is down")
    func stuckRequestsFailOverTogether() throws {
        let silent = Self.silentListener()
        defer { close(silent.fd) }
        let good = try DemoBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [silent.port, good.port],
                                                                     top: "timeouts { upstream_header 1s; }"))
        // Eight requests, one every 120 ms, so about half are sent to the silent server while it
        // is still in rotation, each at its own time.
        let results = Results()
        let done = DispatchGroup()
        let port = gh.port
        for i in 0..<8 {
            done.enter()
            Thread.detachNewThread {
                usleep(UInt32(i) * 120_000)
                let start = Date()
                let status = (try? HTTP.get(port: port, "/stuck-\(i)").status) ?? 0
                results.add(status, Date().timeIntervalSince(start))
                done.leave()
            }
        }
        #expect(done.wait(timeout: .now() + 10) == .success)
        let items = results.items
        #expect(items.map(\.status) == Array(repeating: 200, count: 8), "\(items)")
        // Only the first request sent to the silent server waits its whole upstream_header; the
        // ones sent after it are woken when it times out (without the fix each waits 1 s).
        let waitedWhole = items.filter { $0.seconds >= 0.95 }
        #expect(waitedWhole.count == 1, "\(items.map(\.seconds))")
        #expect(items.map(\.seconds).max()! < 1.5, "\(items.map(\.seconds))")
        let server = "backend=\"b\",server=\"127.0.0.1:\(silent.port)\""
        #expect(try gh.metric("gatehouse_upstream_server_up{\(server)}") == 0)
        #expect(try gh.metric("gatehouse_timeouts_total{kind=\"upstream_header\"}") >= 1)
        // Out of rotation: the next requests go to the healthy server at once.
        for i in 0..<4 {
            let start = Date()
            #expect(try HTTP.get(port: gh.port, "/after-\(i)").status == 200)
            #expect(Date().timeIntervalSince(start) < 0.5)
        }
    }
}

/// A server that is slow on one request but shows it is alive on another (an interim 102
/// Processing, then the final head) is not cut short when the slow request times out: the
/// request it is answering gets its answer, not a 502.
@Suite("Hung server: a live answer is not cut short")
struct HungServerInterimTests {
    @Test("a request that already got an interim response from the server is not woken as if it were hung")
    func interimAnswerNotCutShort() throws {
        // Server one: /hang is never answered; /slow gets 102 at once and its 200 after 0.9 s.
        let one = try ScriptedBackend { fd, head in
            if head.hasPrefix("GET /hang") {
                sleep(5)
                return .close
            }
            ScriptedBackend.write(fd, "HTTP/1.1 102 Processing\r\n\r\n")
            usleep(900_000)
            ScriptedBackend.write(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nslow\n")
            return .keepOpen
        }
        let two = try ScriptedBackend { fd, _ in
            ScriptedBackend.write(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\ntwo!\n")
            return .keepOpen
        }
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [one.port, two.port],
                                                                     top: "timeouts { upstream_header 1s; }"))
        // Round robin: /hang goes to server one, /warm to server two, /slow to server one.
        let hang = try Conn(port: gh.port)
        try hang.send("GET /hang HTTP/1.1\r\nHost: t\r\n\r\n")
        usleep(100_000)
        #expect(try HTTP.get(port: gh.port, "/warm").text == "two!\n")
        usleep(200_000)
        let slow = try Conn(port: gh.port)
        try slow.send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        // /hang times out at 1 s and fails over to server two; /slow, sent at 0.3 s, has its 102
        // and gets its 200 from server one at 1.2 s, within its own upstream_header.
        let r = try slow.readResponse()
        #expect(r.status == 200 && r.text == "slow\n", "got \(r.status) \(r.text.debugDescription)")
        #expect(try hang.readResponse().text == "two!\n")
    }
}
