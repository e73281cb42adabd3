import Foundation
import Glibc

/// A parsed HTTP/1.1 response.
struct Response {
    var status: Int
    var headers: [(String, String)]
    var body: [UInt8]
    func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
    var text: String { String(decoding: body, as: UTF8.self) }
}

/// A blocking test client on raw sockets, so tests control every byte.
final class Conn {
    let fd: Int32
    var pending: [UInt8] = []

    /// `smallReceiveBuffer`: a 4 KiB receive buffer, so a client that does not read stops the
    /// sender soon (as slowhttptest's slow read does).
    init(port: UInt16, timeout: Int = 30, smallReceiveBuffer: Bool = false) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if smallReceiveBuffer {
            var size: Int32 = 4096
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var tv = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else {
            close(fd)
            throw TestFailure("connect to \(port) failed: errno \(errno)")
        }
    }

    deinit { close(fd) }

    func send(_ s: String) throws { try send(Array(s.utf8)) }

    func send(_ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw TestFailure("send failed: errno \(errno)") }
            off += n
        }
    }

    /// Reads more bytes; false on EOF.
    func fill() throws -> Bool {
        var buf = [UInt8](repeating: 0, count: 65536)
        let n = recv(fd, &buf, buf.count, 0)
        if n < 0 { throw TestFailure("recv failed: errno \(errno)") }
        if n == 0 { return false }
        pending += buf[0..<n]
        return true
    }

    /// True when the peer has closed (EOF) within `timeout` seconds with no more data.
    func isClosedByPeer() -> Bool {
        while true {
            guard let more = try? fill() else { return false }
            if !more { return true }
        }
    }

    /// Reads one response (to a request with `method`).
    func readResponse(method: String = "GET") throws -> Response {
        var headEnd: Int?
        while headEnd == nil {
            if let r = pending.firstRange(of: [13, 10, 13, 10]) { headEnd = r.upperBound; break }
            guard try fill() else { throw TestFailure("EOF before response head; got \(String(decoding: pending, as: UTF8.self).debugDescription)") }
        }
        let headText = String(decoding: pending[0..<headEnd!], as: UTF8.self)
        var lines = headText.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        let statusLine = lines.removeFirst()
        let status = Int(statusLine.split(separator: " ")[1])!
        let headers = lines.map { l -> (String, String) in
            let i = l.firstIndex(of: ":")!
            return (String(l[..<i]), l[l.index(after: i)...].trimmingCharacters(in: .whitespaces))
        }
        pending.removeFirst(headEnd!)
        var r = Response(status: status, headers: headers, body: [])
        if status == 101 { return r }  // what follows is the switched protocol's
        if status < 200 { return try readResponse(method: method) }
        if method == "HEAD" || status == 204 || status == 304 { return r }
        if let cl = r.header("Content-Length").flatMap(Int.init) {
            while pending.count < cl { guard try fill() else { throw TestFailure("EOF in body") } }
            r.body = Array(pending[0..<cl])
            pending.removeFirst(cl)
        } else if r.header("Transfer-Encoding")?.lowercased() == "chunked" {
            while true {
                while pending.firstRange(of: [13, 10]) == nil { guard try fill() else { throw TestFailure("EOF in chunk") } }
                let lineEnd = pending.firstRange(of: [13, 10])!
                let size = Int(String(decoding: pending[0..<lineEnd.lowerBound], as: UTF8.self).split(separator: ";")[0], radix: 16)!
                pending.removeFirst(lineEnd.upperBound)
                if size == 0 {
                    while pending.firstRange(of: [13, 10]) == nil { guard try fill() else { break } }
                    if let e = pending.firstRange(of: [13, 10]) { pending.removeFirst(e.upperBound) }
                    break
                }
                while pending.count < size + 2 { guard try fill() else { throw TestFailure("EOF in chunk") } }
                r.body += pending[0..<size]
                pending.removeFirst(size + 2)
            }
        } else {
            while try fill() {}
            r.body = pending
            pending = []
        }
        return r
    }
}

enum HTTP {
    /// Sends raw request bytes on a new connection and reads one response.
    static func request(port: UInt16, _ raw: String) throws -> Response {
        let c = try Conn(port: port)
        try c.send(raw)
        return try c.readResponse(method: String(raw.prefix { $0 != " " }))
    }

    static func get(port: UInt16, _ path: String) throws -> Response {
        try request(port: port, "GET \(path) HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
    }
}

/// `count` keep-alive connections to `port`, each with one GET of `path` + its number answered 200
/// (throws otherwise), left open.
func keepAliveClients(port: UInt16, count: Int, path: String) throws -> [Conn] {
    try (0..<count).map { i in
        let c = try Conn(port: port)
        try c.send("GET \(path)\(i) HTTP/1.1\r\nHost: t\r\n\r\n")
        let status = try c.readResponse().status
        guard status == 200 else { throw TestFailure("GET \(path)\(i): \(status)") }
        return c
    }
}
