import Glibc

/// An IPv4 or IPv6 address and port, kept as the raw sockaddr bytes the kernel wants.
public struct SocketAddress: Sendable, Hashable, CustomStringConvertible {
    public enum Family: Sendable, Hashable { case v4, v6 }
    public let family: Family
    /// Network-order address bytes (4 or 16).
    public let bytes: [UInt8]
    public let port: UInt16

    public init(family: Family, bytes: [UInt8], port: UInt16) {
        self.family = family
        self.bytes = bytes
        self.port = port
    }

    /// Parses a numeric address, or resolves a name (at startup only: getaddrinfo blocks).
    public static func resolve(host: String, port: UInt16) -> SocketAddress? {
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            return SocketAddress(family: .v4, bytes: withUnsafeBytes(of: v4) { Array($0) }, port: port)
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 {
            return SocketAddress(family: .v6, bytes: withUnsafeBytes(of: v6) { Array($0) }, port: port)
        }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var res: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &res) == 0, let first = res else { return nil }
        defer { freeaddrinfo(res) }
        var cur: UnsafeMutablePointer<addrinfo>? = first
        while let ai = cur {
            if ai.pointee.ai_family == AF_INET, let sa = ai.pointee.ai_addr {
                let sin = UnsafeRawPointer(sa).load(as: sockaddr_in.self)
                return SocketAddress(family: .v4, bytes: withUnsafeBytes(of: sin.sin_addr) { Array($0) }, port: port)
            }
            cur = ai.pointee.ai_next
        }
        return nil
    }

    /// Builds the sockaddr and hands it to `body`.
    public func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        switch family {
        case .v4:
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            withUnsafeMutableBytes(of: &sin.sin_addr) { $0.copyBytes(from: bytes) }
            return withUnsafePointer(to: &sin) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        case .v6:
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = port.bigEndian
            withUnsafeMutableBytes(of: &sin6.sin6_addr) { $0.copyBytes(from: bytes) }
            return withUnsafePointer(to: &sin6) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        }
    }

    /// Reads a sockaddr the kernel filled in.
    public static func from(storage: UnsafeRawPointer) -> SocketAddress? {
        let family = storage.load(as: sockaddr.self).sa_family
        if family == sa_family_t(AF_INET) {
            let sin = storage.load(as: sockaddr_in.self)
            return SocketAddress(family: .v4, bytes: withUnsafeBytes(of: sin.sin_addr) { Array($0) }, port: UInt16(bigEndian: sin.sin_port))
        }
        if family == sa_family_t(AF_INET6) {
            let sin6 = storage.load(as: sockaddr_in6.self)
            return SocketAddress(family: .v6, bytes: withUnsafeBytes(of: sin6.sin6_addr) { Array($0) }, port: UInt16(bigEndian: sin6.sin6_port))
        }
        return nil
    }

    /// The address without the port, as text ("127.0.0.1", "::1").
    public var host: String {
        var buf = [CChar](repeating: 0, count: 64)
        let af = family == .v4 ? AF_INET : AF_INET6
        bytes.withUnsafeBytes { _ = inet_ntop(af, $0.baseAddress, &buf, 64) }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public var description: String {
        family == .v4 ? "\(host):\(port)" : "[\(host)]:\(port)"
    }
}
