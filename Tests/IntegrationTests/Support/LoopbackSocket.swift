import Glibc

/// A TCP socket bound to a free port of 127.0.0.1, listening (nobody accepts: connects succeed,
/// nothing answers) or not (close it for a port nothing listens on), and its port.
func loopbackSocket(listening: Bool) throws -> (fd: Int32, port: UInt16) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var a = sockaddr_in()
    a.sin_family = sa_family_t(AF_INET)
    a.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &a) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, len) == 0 && (!listening || listen(fd, 128) == 0) && getsockname(fd, $0, &len) == 0
        }
    }
    guard fd >= 0, ok else {
        close(fd)
        throw TestFailure("cannot bind a loopback socket")
    }
    return (fd, UInt16(bigEndian: a.sin_port))
}
