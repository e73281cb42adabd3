import Foundation
import Glibc

/// Thousands of concurrent keep-alive clients in one test thread, driven by poll(2).
final class ManyClients {
    private(set) var fds: [Int32] = []

    /// Opens `count` connections to `port`.
    init(port: UInt16, count: Int) throws {
        guard openFileLimit > rlim_t(count + 256) else {
            throw TestFailure("\(count) clients need more open files than this process may have (\(openFileLimit)): raise the hard limit (ulimit -Hn)")
        }
        fds.reserveCapacity(count)
        for _ in 0..<count {
            let c = try Conn(port: port)
            let fd = dup(c.fd)
            fds.append(fd)
        }
    }

    deinit { for fd in fds { close(fd) } }

    /// Sends `request` on every connection and waits for one whole response on each (Content-Length
    /// framed). Returns the status of each, 0 for none.
    func roundTrip(_ request: String, timeout: Double = 60) -> [Int] {
        exchange(timeout: timeout) { _ in request }.map(\.status)
    }

    /// Sends connection i `request(i)` and waits for one whole response on each (Content-Length
    /// framed). Returns the status of each (0 for none) and the bytes it received.
    func exchange(timeout: Double = 60, _ request: (Int) -> String) -> [(status: Int, bytes: Int)] {
        for (i, fd) in fds.enumerated() {
            _ = Array(request(i).utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
        var statuses = [Int](repeating: 0, count: fds.count)
        var bufs = [[UInt8]](repeating: [], count: fds.count)
        var done = [Bool](repeating: false, count: fds.count)
        var remaining = fds.count
        var pfds = fds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        let end = Date().addingTimeInterval(timeout)
        var chunk = [UInt8](repeating: 0, count: 16384)
        while remaining > 0 && Date() < end {
            let n = poll(&pfds, nfds_t(pfds.count), 200)
            if n <= 0 { continue }
            for i in pfds.indices where pfds[i].revents != 0 && !done[i] {
                let r = recv(pfds[i].fd, &chunk, chunk.count, Int32(MSG_DONTWAIT))
                if r <= 0 {
                    done[i] = true
                    remaining -= 1
                    pfds[i].events = 0
                    continue
                }
                bufs[i] += chunk[0..<r]
                if let s = Self.complete(bufs[i]) {
                    statuses[i] = s
                    done[i] = true
                    remaining -= 1
                    pfds[i].events = 0
                }
            }
        }
        return zip(statuses, bufs).map { ($0, $1.count) }
    }

    /// The status once `b` holds a whole Content-Length-framed response.
    static func complete(_ b: [UInt8]) -> Int? {
        guard let he = b.firstRange(of: [13, 10, 13, 10]) else { return nil }
        let head = String(decoding: b[0..<he.lowerBound], as: UTF8.self)
        let status = Int(head.split(separator: " ")[1]) ?? -1
        var length = 0
        for line in head.components(separatedBy: "\r\n") where line.lowercased().hasPrefix("content-length:") {
            length = Int(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) ?? 0
        }
        return b.count - he.upperBound >= length ? status : nil
    }
}
