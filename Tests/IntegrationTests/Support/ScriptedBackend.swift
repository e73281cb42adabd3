import Foundation
import Glibc

/// A backend whose every answer is scripted byte for byte, for faults the demo backend cannot
/// make (a close in the same segment as the last bytes, a reset mid-body, interim responses).
/// It runs on its own threads in the test process; it reads each request head (and a
/// Content-Length body) and hands the connection to `answer`, which writes and returns how the
/// connection ends.
final class ScriptedBackend: @unchecked Sendable {
    enum End { case keepOpen, close, reset }

    let port: UInt16
    private let listenFD: Int32
    private let answer: @Sendable (Int32, String) -> End
    private let lock = NSLock()
    private var _requests = 0
    var requests: Int { lock.lock(); defer { lock.unlock() }; return _requests }

    init(_ answer: @escaping @Sendable (_ fd: Int32, _ head: String) -> End) throws {
        self.answer = answer
        let (fd, p) = try Self.listenSocket()
        listenFD = fd
        port = p
        let t = Thread { [self] in acceptLoop() }
        t.start()
    }

    /// A listening socket on 127.0.0.1 and a free port (for the test backends on threads).
    static func listenSocket() throws -> (Int32, UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, listen(fd, 512) == 0 else { throw TestFailure("test backend: bind/listen failed") }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return (fd, UInt16(bigEndian: addr.sin_port))
    }

    deinit { shutdown(listenFD, Int32(SHUT_RDWR)); close(listenFD) }

    private func acceptLoop() {
        while true {
            let fd = accept(listenFD, nil, nil)
            if fd < 0 { return }
            let t = Thread { [self] in serve(fd) }
            t.start()
        }
    }

    private func serve(_ fd: Int32) {
        var pending: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            while pending.firstRange(of: [13, 10, 13, 10]) == nil {
                let n = recv(fd, &buf, buf.count, 0)
                if n <= 0 { close(fd); return }
                pending += buf[0..<n]
            }
            let end = pending.firstRange(of: [13, 10, 13, 10])!.upperBound
            let head = String(decoding: pending[0..<end], as: UTF8.self)
            pending.removeFirst(end)
            if let cl = Self.contentLength(head) {
                while pending.count < cl {
                    let n = recv(fd, &buf, buf.count, 0)
                    if n <= 0 { close(fd); return }
                    pending += buf[0..<n]
                }
                pending.removeFirst(cl)
            }
            lock.lock(); _requests += 1; lock.unlock()
            switch answer(fd, head) {
            case .keepOpen: continue
            case .close: close(fd); return
            case .reset:
                var l = linger(l_onoff: 1, l_linger: 0)
                setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
                close(fd)
                return
            }
        }
    }

    private static func contentLength(_ head: String) -> Int? {
        for line in head.components(separatedBy: "\r\n") where line.lowercased().hasPrefix("content-length:") {
            return Int(line.dropFirst(15).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }

    /// Writes all of `s` (blocking).
    static func write(_ fd: Int32, _ s: String) {
        let bytes = Array(s.utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            off += n
        }
    }
}
