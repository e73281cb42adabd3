import COpenSSL
import CTLSShim
import Glibc
import Runtime

/// One server-side TLS connection over a loop socket, driven without blocking: every OpenSSL call
/// is tried at once, and a want-read or want-write suspends the task until the socket's readiness
/// (or its one deadline). OpenSSL reads and writes the fd itself; we only wait for it.
///
/// Bytes OpenSSL has already decrypted are never stranded: every read calls SSL_read before it
/// waits, so what OpenSSL holds is returned first and epoll is asked only when it holds nothing.
public final class TLSStream {
    let ssl: OpaquePointer
    unowned(unsafe) let socket: Socket
    public unowned(unsafe) let context: TLSServerContext
    public private(set) var isEstablished = false
    /// A fatal error was seen: no close_notify may follow.
    private var failed = false

    /// An SSL object for `socket` (accept side); nil when OpenSSL cannot make one.
    public init?(context: TLSServerContext, socket: Socket) {
        guard let ssl = SSL_new(context.defaultContext) else { return nil }
        guard SSL_set_fd(ssl, socket.fd) == 1 else {
            SSL_free(ssl)
            return nil
        }
        SSL_set_accept_state(ssl)
        self.ssl = ssl
        self.socket = socket
        self.context = context
    }

    deinit { SSL_free(ssl) }

    /// Completes the handshake by `deadline`; false (counted by reason) when it fails.
    @LoopActor
    public func handshake(until deadline: UInt64) async -> Bool {
        let stats = context.stats
        let started = EventLoop.shared.now
        while true {
            ERR_clear_error()
            let r = SSL_do_handshake(ssl)
            if r == 1 {
                isEstablished = true
                let v = SSL_version(ssl) == TLS1_3_VERSION ? 1 : 0
                stats.handshakes[v][SSL_session_reused(ssl) == 1 ? 1 : 0] += 1
                stats.onHandshakeDuration(EventLoop.shared.now - started)
                return true
            }
            let e = SSL_get_error(ssl, r)
            let waited: Bool
            switch e {
            case SSL_ERROR_WANT_READ: waited = await socket.waitReadable(until: deadline)
            case SSL_ERROR_WANT_WRITE: waited = await socket.waitWritable(until: deadline)
            default:
                failed = true
                stats.failures[classify(e).rawValue] += 1
                return false
            }
            if !waited {
                failed = true
                stats.failures[(socket.isClosed ? TLSStats.Failure.closed : .timeout).rawValue] += 1
                return false
            }
        }
    }

    private func classify(_ e: Int32) -> TLSStats.Failure {
        if e == SSL_ERROR_ZERO_RETURN { return .closed }
        if e == SSL_ERROR_SYSCALL { return .closed }
        switch Int32(gh_err_peek_reason()) {
        case SSL_R_UNSUPPORTED_PROTOCOL, SSL_R_WRONG_VERSION_NUMBER, SSL_R_VERSION_TOO_LOW, SSL_R_VERSION_TOO_HIGH:
            return .protocolVersion
        case SSL_R_NO_SHARED_CIPHER: return .noSharedCipher
        case SSL_R_NO_APPLICATION_PROTOCOL: return .noApplicationProtocol
        case SSL_R_HTTP_REQUEST, SSL_R_HTTPS_PROXY_REQUEST: return .httpRequest
        case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE, SSL_R_CERTIFICATE_VERIFY_FAILED, SSL_R_NO_CERTIFICATES_RETURNED:
            return .certificate
        default: return .other
        }
    }

    /// Reads at least one byte of plaintext (0 at the peer's close), waiting until `deadline`.
    @LoopActor
    public func read(into buf: UnsafeMutableRawBufferPointer, until deadline: UInt64) async throws(IOError) -> Int {
        while true {
            if socket.isClosed { throw .closed }
            ERR_clear_error()
            let n = SSL_read(ssl, buf.baseAddress, Int32(min(buf.count, 1 << 30)))
            if n > 0 { return Int(n) }
            let e = SSL_get_error(ssl, n)
            let waited: Bool
            switch e {
            case SSL_ERROR_WANT_READ: waited = await socket.waitReadable(until: deadline)
            // A TLS 1.3 key update or session ticket can make a read need to write.
            case SSL_ERROR_WANT_WRITE: waited = await socket.waitWritable(until: deadline)
            case SSL_ERROR_ZERO_RETURN: return 0
            case SSL_ERROR_SYSCALL:
                failed = true
                let err = errno
                if err == 0 { return 0 }
                throw .errno(err)
            default:
                failed = true
                throw .errno(EPROTO)
            }
            if !waited { throw socket.isClosed ? .closed : .timedOut }
        }
    }

    /// Writes all of `bytes` (retrying a want-write with the same remaining bytes, as OpenSSL needs).
    @LoopActor
    public func write(_ bytes: UnsafeRawBufferPointer, until deadline: UInt64) async throws(IOError) {
        var offset = 0
        while offset < bytes.count {
            if socket.isClosed { throw .closed }
            ERR_clear_error()
            let n = SSL_write(ssl, bytes.baseAddress! + offset, Int32(min(bytes.count - offset, 1 << 30)))
            if n > 0 {
                offset += Int(n)
                continue
            }
            let waited: Bool
            switch SSL_get_error(ssl, n) {
            case SSL_ERROR_WANT_WRITE: waited = await socket.waitWritable(until: deadline)
            case SSL_ERROR_WANT_READ: waited = await socket.waitReadable(until: deadline)
            case SSL_ERROR_SYSCALL:
                failed = true
                throw .errno(errno == 0 ? EPIPE : errno)
            default:
                failed = true
                throw .errno(EPROTO)
            }
            if !waited { throw socket.isClosed ? .closed : .timedOut }
        }
    }

    /// Writes a gather list through `staging`, so a head of many small spans becomes one TLS
    /// record (and one syscall) instead of one record per span.
    @LoopActor
    public func write(_ list: IOVecList, staging: UnsafeMutableRawBufferPointer, until deadline: UInt64) async throws(IOError) {
        while true {
            let n = list.gather(into: staging)
            if n == 0 { return }
            try await write(UnsafeRawBufferPointer(rebasing: staging[0..<n]), until: deadline)
        }
    }

    /// The verified client certificate's subject (RFC 2253), if one was presented and verified.
    public func peerSubject() -> String? {
        var buf = [CChar](repeating: 0, count: 1024)
        let n = gh_ssl_peer_subject(ssl, &buf, Int32(buf.count))
        guard n >= 0 else { return nil }
        return String(decoding: buf[0..<Int(n)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The negotiated protocol version ("TLSv1.3").
    public var version: String { String(cString: SSL_get_version(ssl)) }

    /// Sends close_notify if the session is sound (best effort: a full socket buffer skips it).
    public func shutdown() {
        guard isEstablished, !failed else { return }
        ERR_clear_error()
        _ = SSL_shutdown(ssl)
    }
}
