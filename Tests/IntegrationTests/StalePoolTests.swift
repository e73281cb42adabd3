import Foundation
import Glibc
import Testing

/// A backend that keeps connections alive but closes each one after a short random idle time
/// (0-20 ms, a third of the time at once), as servers with a small keep-alive timeout do. Threads
/// and blocking sockets, so its timing owes nothing to the proxy's runtime.
///
/// It never closes a connection once the test's client has said it is sending: a close that
/// crosses a request already on its way is a race no proxy can win for a POST (the request may
/// have been read), so the test leaves it out. Every close it makes is one the proxy can see
/// before it leases the connection: the FIN is in the proxy's socket before the next request is.
final class ClosingBackend: @unchecked Sendable {
    let port: UInt16
    private let listenFD: Int32
    private let lock = NSLock()
    private var served = 0
    private var idleCloses = 0
    private var clientSending = false

    init() throws {
        let (fd, bound) = try loopbackSocket(listening: true)
        listenFD = fd
        port = bound
        Thread.detachNewThread { [self] in
            while true {
                let c = accept(fd, nil, nil)
                if c < 0 { return }
                Thread.detachNewThread { self.serve(c) }
            }
        }
    }

    var requests: Int {
        lock.lock()
        defer { lock.unlock() }
        return served
    }

    /// Connections it closed while idle.
    var closes: Int {
        lock.lock()
        defer { lock.unlock() }
        return idleCloses
    }

    /// The client is about to send a request: no idle close from now until it is answered.
    func clientWillSend() {
        lock.lock()
        clientSending = true
        lock.unlock()
    }

    /// Answers requests on `fd` until it has been idle for its random delay, then closes.
    private func serve(_ fd: Int32) {
        var pending: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 16384)
        var open = true
        defer { if open { close(fd) } }
        while true {
            // One request: the head, then Content-Length bytes of body.
            var need: Int?
            while true {
                if need == nil, let end = pending.firstRange(of: [13, 10, 13, 10]) {
                    let head = String(decoding: pending[..<end.lowerBound], as: UTF8.self).lowercased()
                    let cl = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                        .flatMap { Int($0.dropFirst(15).trimmingCharacters(in: .whitespaces)) } ?? 0
                    need = end.upperBound + cl
                }
                if let n = need, pending.count >= n {
                    pending.removeFirst(n)
                    break
                }
                let n = recv(fd, &buf, buf.count, 0)
                if n <= 0 { return }
                pending += buf[0..<n]
            }
            lock.lock()
            served += 1
            clientSending = false  // before the answer: the client speaks again only after it
            lock.unlock()
            let answer = Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".utf8)
            guard answer.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == answer.count else { return }
            // Idle close: at once a third of the time, else after 1-20 ms without a new request.
            let idleMs = Int.random(in: 0..<3) == 0 ? 0 : Int.random(in: 1...20)
            if !pending.isEmpty { continue }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if idleMs > 0 && poll(&p, 1, Int32(idleMs)) > 0 { continue }
            lock.lock()
            defer { lock.unlock() }
            if !clientSending {
                idleCloses += 1
                open = false
                close(fd)
                return
            }
        }
    }

    deinit {
        shutdown(listenFD, Int32(SHUT_RDWR))
        close(listenFD)
    }
}

/// Pooled connections that the server has closed are found out before they are leased.
@Suite("Stale pooled connections")
struct StalePoolTests {
    @Test("300 sequential POSTs against a backend that closes idle connections after 0-20 ms: no 502")
    func postsOnClosingBackend() throws {
        let be = try ClosingBackend()
        let gh = try GatehouseProcess(config: GatehouseProcess.config(backends: [be.port]))
        var c = try Conn(port: gh.port)
        var bad: [Int] = []
        for i in 0..<300 {
            try c.send("POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
            let r = try c.readResponse(method: "POST")
            if r.status != 200 {
                bad.append(i)
                c = try Conn(port: gh.port)  // the proxy closes after a 502
            }
            usleep(UInt32.random(in: 0...20_000))
            be.clientWillSend()
        }
        #expect(bad.isEmpty, "\(bad.count) of 300 POSTs failed (at \(bad.prefix(10)))")
        #expect(try gh.metric("gatehouse_requests_total{backend=\"b\",status_class=\"5xx\"}") == 0)
        #expect(be.requests == 300)
        #expect(be.closes > 50, "only \(be.closes) idle closes: the race was hardly tried")
    }
}
