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
    /// Our socket BIO (owned by `ssl`): it tells when OpenSSL's read drained the socket.
    private let bio: OpaquePointer
    /// The socket whose fd OpenSSL reads and writes; a pooled upstream connection may move to
    /// another socket record (same fd), see `retarget`.
    public private(set) unowned(unsafe) var socket: Socket
    /// The listener's context (server side); nil on connections to backends.
    public unowned(unsafe) let context: TLSServerContext?
    private unowned(unsafe) let stats: TLSStats?
    public private(set) var isEstablished = false
    /// A fatal error was seen: no close_notify may follow.
    private var failed = false

    /// An SSL object for `socket` (accept side); nil when OpenSSL cannot make one.
    public init?(context: TLSServerContext, socket: Socket) {
        guard let ssl = SSL_new(context.defaultContext) else { return nil }
        guard let bio = gh_bio_new_socket(socket.fd) else {
            SSL_free(ssl)
            return nil
        }
        SSL_set_bio(ssl, bio, bio)
        SSL_set_accept_state(ssl)
        self.ssl = ssl
        self.bio = bio
        self.socket = socket
        self.context = context
        stats = context.stats
    }

    /// A client-side stream to a backend: SNI and the certificate's name check use `serverName`.
    public init?(client: TLSClientContext, socket: Socket, serverName: String) {
        guard let ssl = SSL_new(client.context) else { return nil }
        guard let bio = gh_bio_new_socket(socket.fd) else {
            SSL_free(ssl)
            return nil
        }
        SSL_set_bio(ssl, bio, bio)
        self.bio = bio
        // SNI only for names, not addresses (RFC 6066 §3); the certificate check covers both.
        if !serverName.isEmpty && serverName.contains(where: { $0.isLetter }) && !serverName.contains(":") {
            _ = gh_ssl_set_sni(ssl, serverName)
        }
        if client.settings.verify { _ = SSL_set1_host(ssl, serverName) }
        SSL_set_connect_state(ssl)
        self.ssl = ssl
        self.socket = socket
        context = nil
        stats = nil
    }

    /// Points the stream at the record its fd moved to (same fd, see `Socket.transfer`).
    public func retarget(_ s: Socket) {
        precondition(s.fd == socket.fd || socket.isClosed)
        socket = s
    }

    deinit { SSL_free(ssl) }

    /// Completes the handshake by `deadline`; false (counted by reason) when it fails.
    nonisolated(nonsending)
    public func handshake(until deadline: UInt64) async -> Bool {
        let started = EventLoop.shared.now
        while true {
            ERR_clear_error()
            _ = gh_bio_take_drained(bio)
            let r = SSL_do_handshake(ssl)
            if gh_bio_take_drained(bio) != 0 { socket.noteDrained() }
            if r == 1 {
                isEstablished = true
                let v = SSL_version(ssl) == TLS1_3_VERSION ? 1 : 0
                stats?.handshakes[v][SSL_session_reused(ssl) == 1 ? 1 : 0] += 1
                stats?.onHandshakeDuration(EventLoop.shared.now - started)
                return true
            }
            let e = SSL_get_error(ssl, r)
            let waited: Bool
            switch e {
            case SSL_ERROR_WANT_READ: waited = await socket.waitReadable(until: deadline)
            case SSL_ERROR_WANT_WRITE: waited = await socket.waitWritable(until: deadline)
            default:
                failed = true
                stats?.failures[classify(e).rawValue] += 1
                return false
            }
            if !waited {
                failed = true
                stats?.failures[(socket.isClosed ? TLSStats.Failure.closed : .timeout).rawValue] += 1
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
        case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE, SSL_R_CERTIFICATE_VERIFY_FAILED, SSL_R_NO_CERTIFICATES_RETURNED,
             SSL_R_TLSV1_ALERT_UNKNOWN_CA, SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
            return .certificate
        default: return .other
        }
    }

    /// OpenSSL holds bytes (decrypted or not) that no read has returned yet.
    public var hasPendingBytes: Bool { SSL_has_pending(ssl) != 0 }

    /// Reads at least one byte of plaintext (0 at the peer's close), waiting until `deadline`.
    nonisolated(nonsending)
    public func read(into buf: UnsafeMutableRawBufferPointer, until deadline: UInt64) async throws(IOError) -> Int {
        while true {
            if socket.isClosed { throw .closed }
            if !socket.mayRead && SSL_has_pending(ssl) == 0 {
                // The last read drained the socket and OpenSSL holds nothing: a read now could
                // only say EAGAIN, so wait for epoll's edge first.
                guard await socket.waitReadable(until: deadline) else { throw socket.isClosed ? .closed : .timedOut }
                continue
            }
            if let n = try readNow(into: buf) { return n }
            let waited: Bool
            // A TLS 1.3 key update or session ticket can make a read need to write.
            if readWantsWrite {
                waited = await socket.waitWritable(until: deadline)
            } else {
                // A want-read means a read said EAGAIN (so the check above waits); should it not
                // have, wait anyway rather than spin.
                if !socket.mayRead { continue }
                waited = await socket.waitReadable(until: deadline)
            }
            if !waited { throw socket.isClosed ? .closed : .timedOut }
        }
    }

    /// The last `readNow` that would block needs the socket writable, not readable.
    public private(set) var readWantsWrite = false

    /// Reads what OpenSSL can give now: bytes of plaintext, 0 at the peer's close, nil when it
    /// would block (`readWantsWrite` says on what).
    @inline(__always)
    public func readNow(into buf: UnsafeMutableRawBufferPointer) throws(IOError) -> Int? {
        ERR_clear_error()
        _ = gh_bio_take_drained(bio)  // only what this SSL_read's own reads found counts
        let n = SSL_read(ssl, buf.baseAddress, Int32(min(buf.count, 1 << 30)))
        if gh_bio_take_drained(bio) != 0 { socket.noteDrained() }
        if n > 0 {
            readWantsWrite = false
            return Int(n)
        }
        switch SSL_get_error(ssl, n) {
        case SSL_ERROR_WANT_READ:
            readWantsWrite = false
            return nil
        case SSL_ERROR_WANT_WRITE:
            readWantsWrite = true
            return nil
        case SSL_ERROR_ZERO_RETURN:
            readWantsWrite = false
            return 0
        case SSL_ERROR_SYSCALL:
            failed = true
            let err = errno
            if err == 0 { return 0 }
            throw .errno(err)
        default:
            failed = true
            throw .errno(EPROTO)
        }
    }

    /// Writes all of `bytes` (retrying a want-write with the same remaining bytes, as OpenSSL needs).
    nonisolated(nonsending)
    public func write(_ bytes: UnsafeRawBufferPointer, until deadline: UInt64) async throws(IOError) {
        var offset = 0
        while offset < bytes.count {
            if let n = try writeNow(UnsafeRawBufferPointer(rebasing: bytes[offset...])) {
                offset += n
                continue
            }
            let waited = writeWantsRead ? await socket.waitReadable(until: deadline) : await socket.waitWritable(until: deadline)
            if !waited { throw socket.isClosed ? .closed : .timedOut }
        }
    }

    /// The last `writeNow` that would block needs the socket readable (a TLS 1.3 key update),
    /// not writable.
    private var writeWantsRead = false

    /// Writes what the connection takes now: bytes written, or nil when it would block. After nil,
    /// the next write must begin with the same bytes (OpenSSL may hold part of them in a record);
    /// partial writes and moving buffers are enabled, so the same start with more after it is fine.
    public func writeNow(_ bytes: UnsafeRawBufferPointer) throws(IOError) -> Int? {
        if socket.isClosed { throw .closed }
        ERR_clear_error()
        let n = SSL_write(ssl, bytes.baseAddress, Int32(min(bytes.count, 1 << 30)))
        if n > 0 { return Int(n) }
        switch SSL_get_error(ssl, n) {
        case SSL_ERROR_WANT_WRITE:
            writeWantsRead = false
            return nil
        case SSL_ERROR_WANT_READ:
            writeWantsRead = true
            return nil
        case SSL_ERROR_SYSCALL:
            failed = true
            throw .errno(errno == 0 ? EPIPE : errno)
        default:
            failed = true
            throw .errno(EPROTO)
        }
    }

    /// Writes a gather list through `staging`, so a head of many small spans becomes one TLS
    /// record (and one syscall) instead of one record per span.
    nonisolated(nonsending)
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

    /// ALPN chose HTTP/2 ("h2") for this connection.
    public var negotiatedH2: Bool {
        var p: UnsafePointer<UInt8>?
        var n: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &p, &n)
        guard n == 2, let p else { return false }
        return p[0] == UInt8(ascii: "h") && p[1] == UInt8(ascii: "2")
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
