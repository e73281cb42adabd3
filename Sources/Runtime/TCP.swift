import CLinux
import Glibc

/// Creating, binding, accepting and connecting TCP sockets. Every socket is non-blocking,
/// close-on-exec and TCP_NODELAY.
public enum TCP {
    /// Opens a listening socket with SO_REUSEADDR (a restart binds at once despite TIME_WAIT).
    /// `reusePort` adds SO_REUSEPORT, so N processes that all ask for it share the port; without
    /// it a second bind of a listening address fails with EADDRINUSE.
    public static func listen(on address: SocketAddress, backlog: Int32 = 4096, reusePort: Bool = false) throws(IOError) -> Socket {
        let fd = try bindListener(on: address, backlog: backlog, reusePort: reusePort)
        guard let s = Socket(fd: fd) else { throw .errno(EBADF) }
        return s
    }

    /// A bound, listening, non-blocking socket's fd, not registered with any loop (the supervisor
    /// binds them for its workers).
    public static func bindListener(on address: SocketAddress, backlog: Int32 = 4096, reusePort: Bool = false) throws(IOError) -> Int32 {
        let fd = socket(address.family == .v4 ? AF_INET : AF_INET6, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .errno(errno) }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        if reusePort {
            _ = setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        let rc = address.withSockaddr { Glibc.bind(fd, $0, $1) }
        guard rc == 0, Glibc.listen(fd, backlog) == 0 else {
            let e = errno
            Glibc.close(fd)
            throw .errno(e)
        }
        return fd
    }

    /// The address a listening fd is bound to.
    public static func localAddress(ofFD fd: Int32) -> SocketAddress? {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        guard rc == 0 else { return nil }
        return withUnsafeBytes(of: &storage) { SocketAddress.from(storage: $0.baseAddress!) }
    }

    /// The address a socket is bound to (to learn the port after binding port 0).
    public static func localAddress(of socket: Socket) -> SocketAddress? { localAddress(ofFD: socket.fd) }

    /// One accepted connection: its fd and the peer's address (not yet registered with the loop).
    public struct Accepted {
        public let fd: Int32
        public let peer: SocketAddress?
    }

    /// Accepts one connection if one is pending; nil when none is.
    public static func acceptNow(_ listener: Socket) throws(IOError) -> Accepted? {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        while true {
            let fd = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    gh_accept4(listener.fd, $0, &len, Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue))
                }
            }
            if fd >= 0 {
                setNoDelay(fd)
                let peer = withUnsafeBytes(of: &storage) { SocketAddress.from(storage: $0.baseAddress!) }
                return Accepted(fd: fd, peer: peer)
            }
            let e = errno
            if e == EINTR || e == ECONNABORTED { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return nil }
            throw .errno(e)
        }
    }

    /// Waits for a connection; rethrows EMFILE/ENFILE so the caller can back off.
    @LoopActor
    public static func accept(_ listener: Socket) async throws(IOError) -> Accepted {
        while true {
            if let a = try acceptNow(listener) { return a }
            guard await listener.waitReadable(until: 0) else { throw .closed }
        }
    }

    /// Connects to `address`, failing after `deadline`. The socket is registered with the loop.
    @LoopActor
    public static func connect(to address: SocketAddress, until deadline: UInt64) async throws(IOError) -> Socket {
        let fd = socket(address.family == .v4 ? AF_INET : AF_INET6, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .errno(errno) }
        setNoDelay(fd)
        let rc = address.withSockaddr { Glibc.connect(fd, $0, $1) }
        let e = errno
        guard let s = Socket(fd: fd) else { throw .errno(EBADF) }
        if rc == 0 { return s }
        guard e == EINPROGRESS else {
            s.close()
            throw .errno(e)
        }
        guard await s.waitWritable(until: deadline) else {
            s.close()
            throw .timedOut
        }
        var err: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
        if err != 0 {
            s.close()
            throw .errno(err)
        }
        return s
    }

    /// Caps the bytes a socket's send queue holds beyond what is in flight (TCP_NOTSENT_LOWAT):
    /// writes wait once that many are queued unsent. Linux otherwise grows the send buffer to
    /// megabytes for a peer that reads a few bytes a second, and the proxy pays for every byte it
    /// hands over (in kernel memory and in skbs of the peer's tiny segment size). Bytes in flight
    /// are not counted, so a fast peer far away still gets a full window.
    public static func limitUnsent(_ fd: Int32, _ bytes: Int) {
        var v = Int32(clamping: bytes)
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NOTSENT_LOWAT, &v, socklen_t(MemoryLayout<Int32>.size))
    }

    static func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }
}
