import Foundation
import Glibc

/// A backend that answers every request with what it received: the request line's target, and
/// the body's length and FNV-1a digest (chunked bodies decoded), so a test can check that each
/// body arrived byte for byte and each pipelined request was framed where the client framed it.
/// Keep-alive; one thread per connection in the test process.
final class DigestBackend: @unchecked Sendable {
    let port: UInt16
    private let listenFD: Int32

    init() throws {
        (listenFD, port) = try ScriptedBackend.listenSocket()
        Thread { [self] in
            while true {
                let c = accept(listenFD, nil, nil)
                if c < 0 { return }
                Thread { Self.serve(c) }.start()
            }
        }.start()
    }

    deinit { shutdown(listenFD, Int32(SHUT_RDWR)); close(listenFD) }

    /// "len=N sum=HEX" for `body`, as the backend answers.
    static func digest(_ body: [UInt8]) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in body { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return "len=\(body.count) sum=\(String(h, radix: 16))"
    }

    private final class Reader {
        let fd: Int32
        var pending: [UInt8] = []
        init(_ fd: Int32) { self.fd = fd }
        func more() -> Bool {
            var buf = [UInt8](repeating: 0, count: 65536)
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { return false }
            pending += buf[0..<n]
            return true
        }
        func line() -> String? {
            while pending.firstRange(of: [13, 10]) == nil { guard more() else { return nil } }
            let r = pending.firstRange(of: [13, 10])!
            defer { pending.removeFirst(r.upperBound) }
            return String(decoding: pending[0..<r.lowerBound], as: UTF8.self)
        }
        func take(_ n: Int) -> [UInt8]? {
            while pending.count < n { guard more() else { return nil } }
            defer { pending.removeFirst(n) }
            return Array(pending[0..<n])
        }
    }

    private static func serve(_ fd: Int32) {
        defer { close(fd) }
        let r = Reader(fd)
        while true {
            guard let requestLine = r.line() else { return }
            var length = 0, chunked = false, expect = false
            while let l = r.line(), !l.isEmpty {
                let lower = l.lowercased()
                if lower.hasPrefix("content-length:") { length = Int(lower.dropFirst(15).trimmingCharacters(in: .whitespaces)) ?? 0 }
                if lower.hasPrefix("transfer-encoding:") && lower.contains("chunked") { chunked = true }
                if lower.hasPrefix("expect:") { expect = true }
            }
            if expect { ScriptedBackend.write(fd, "HTTP/1.1 100 Continue\r\n\r\n") }
            var body: [UInt8] = []
            if chunked {
                while true {
                    guard let sizeLine = r.line(), let size = Int(sizeLine.split(separator: ";")[0], radix: 16) else { return }
                    if size == 0 {
                        while let t = r.line(), !t.isEmpty {}
                        break
                    }
                    guard let data = r.take(size), r.take(2) != nil else { return }
                    body += data
                }
            } else if length > 0 {
                guard let data = r.take(length) else { return }
                body = data
            }
            let target = requestLine.split(separator: " ").dropFirst().first.map(String.init) ?? "?"
            let text = "\(target) \(digest(body))\n"
            ScriptedBackend.write(fd, "HTTP/1.1 200 OK\r\nContent-Length: \(text.utf8.count)\r\n\r\n\(text)")
        }
    }
}
