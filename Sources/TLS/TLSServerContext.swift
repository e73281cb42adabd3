import COpenSSL
import CTLSShim
import Config
import Glibc

/// The OpenSSL contexts of one TLS listener: a default context and one per group of server names,
/// all set up alike (protocol policy, ALPN, resumption, client certificates), so whichever one SNI
/// picks behaves the same. Made once at start; loading fails with the config line of the
/// certificate at fault.
public final class TLSServerContext: @unchecked Sendable {
    /// SSL_CTX of the default certificate(s); sessions and tickets live here for every name.
    let defaultContext: OpaquePointer
    private var exact: [String: OpaquePointer] = [:]
    /// "*.example.com" is stored under "example.com" and matches one label to its left.
    private var wildcard: [String: OpaquePointer] = [:]
    public let settings: TLSSettings
    public let stats: TLSStats
    /// Whether the verified client certificate's subject goes to the backend (verify_client on or optional).
    public let forwardsClientSubject: Bool
    /// That header's name, lowercased, to drop a client's own header of the name.
    public let clientSubjectHeaderLowercased: [UInt8]

    public init(settings: TLSSettings, stats: TLSStats) throws(ConfigError) {
        self.settings = settings
        self.stats = stats
        forwardsClientSubject = settings.verifyClient != "off"
        clientSubjectHeaderLowercased = Array(settings.clientSubjectHeader.lowercased().utf8)
        let defaults = settings.certificates.filter { $0.names.isEmpty }
        defaultContext = try Self.makeContext(settings, defaults)
        // Certificates naming the same set of names share a context (RSA and ECDSA side by side).
        var byNames: [[String]: [TLSCertificate]] = [:]
        var order: [[String]] = []
        for c in settings.certificates where !c.names.isEmpty {
            if byNames[c.names] == nil { order.append(c.names) }
            byNames[c.names, default: []].append(c)
        }
        for names in order {
            let ctx = try Self.makeContext(settings, byNames[names]!)
            for n in names {
                if n.hasPrefix("*.") { wildcard[String(n.dropFirst(2))] = ctx } else { exact[n] = ctx }
            }
        }
        if !exact.isEmpty || !wildcard.isEmpty {
            let me = Unmanaged.passUnretained(self).toOpaque()  // contexts live as long as the process
            gh_ssl_ctx_set_sni(defaultContext, { name, arg in
                guard let name, let arg else { return nil }
                let ctx = Unmanaged<TLSServerContext>.fromOpaque(arg).takeUnretainedValue()
                return ctx.context(forServerName: String(cString: name))
            }, me)
        }
    }

    /// The context for a server name (case-insensitive; one wildcard label); nil for the default.
    func context(forServerName name: String) -> OpaquePointer? {
        let n = name.lowercased()
        if let c = exact[n] { return c }
        if let dot = n.firstIndex(of: "."), let c = wildcard[String(n[n.index(after: dot)...])] { return c }
        return nil
    }

    static func version(_ s: String) -> Int32 { s == "TLSv1.3" ? TLS1_3_VERSION : TLS1_2_VERSION }

    private static func makeContext(_ s: TLSSettings, _ certs: [TLSCertificate]) throws(ConfigError) -> OpaquePointer {
        let first = certs[0]
        func fail(_ c: TLSCertificate, _ what: String) -> ConfigError {
            ConfigError(file: c.file, line: c.line, directive: "certificate", message: "\(what): \(TLSError.openSSLText())")
        }
        func failPolicy(_ what: String) -> ConfigError {
            ConfigError(file: first.file, line: first.line, directive: "tls", message: "\(what): \(TLSError.openSSLText())")
        }
        ERR_clear_error()
        guard let ctx = SSL_CTX_new(TLS_server_method()) else { throw failPolicy("cannot create an SSL context") }
        for c in certs {
            guard SSL_CTX_use_certificate_chain_file(ctx, c.certificateFile) == 1 else {
                throw fail(c, "cannot load certificate \(c.certificateFile)")
            }
            guard SSL_CTX_use_PrivateKey_file(ctx, c.keyFile, SSL_FILETYPE_PEM) == 1 else {
                throw fail(c, "cannot load key \(c.keyFile)")
            }
            guard SSL_CTX_check_private_key(ctx) == 1 else {
                throw fail(c, "key \(c.keyFile) does not match certificate \(c.certificateFile)")
            }
        }
        guard gh_ssl_ctx_set_min_proto(ctx, version(s.minVersion)) == 1,
              gh_ssl_ctx_set_max_proto(ctx, version(s.maxVersion)) == 1 else { throw failPolicy("bad protocols") }
        guard SSL_CTX_set_cipher_list(ctx, s.ciphers) == 1 else { throw failPolicy("bad ciphers \"\(s.ciphers)\"") }
        guard gh_ssl_ctx_set_groups(ctx, s.groups) == 1 else { throw failPolicy("bad groups \"\(s.groups)\"") }
        // Renegotiation refused (a client could make us do a handshake's work on demand),
        // compression off (CRIME), a peer's missing close_notify read as a plain EOF, and the
        // client's cipher order honoured (Mozilla intermediate: every suite is strong).
        gh_ssl_ctx_set_policy_options(ctx, s.sessionTickets ? 1 : 0)
        // Idle connections give their 16 KiB read/write buffers back; writes may be partial and
        // be retried from a moved buffer, as a non-blocking writer needs.
        _ = gh_ssl_ctx_set_mode(ctx, Int(SSL_MODE_RELEASE_BUFFERS) | Int(SSL_MODE_ENABLE_PARTIAL_WRITE) | Int(SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER))
        // Read as much as the socket has in one read() instead of a record header, then its body:
        // half the read syscalls. Safe with edge-triggered epoll because every read calls SSL_read
        // before it waits, so ciphertext OpenSSL read ahead is always consumed first.
        gh_ssl_ctx_set_read_ahead(ctx, 1)
        var wire: [UInt8] = []
        for p in s.alpn {
            wire.append(UInt8(p.utf8.count))
            wire += Array(p.utf8)
        }
        guard gh_ssl_ctx_set_alpn(ctx, wire, UInt32(wire.count)) == 1 else { throw failPolicy("cannot set ALPN") }
        let sidContext: [UInt8] = Array("gatehouse".utf8)
        _ = SSL_CTX_set_session_id_context(ctx, sidContext, UInt32(sidContext.count))
        _ = gh_ssl_ctx_set_session_cache_mode(ctx, s.sessionCacheSize > 0 ? Int(SSL_SESS_CACHE_SERVER) : Int(SSL_SESS_CACHE_OFF))
        _ = gh_ssl_ctx_set_session_cache_size(ctx, s.sessionCacheSize)
        _ = SSL_CTX_set_timeout(ctx, Int(s.sessionTimeout / 1_000_000_000))
        if s.sessionTickets {
            if let path = s.ticketKeyFile {
                let key = try readTicketKey(path, file: first.file, line: s.ticketKeyFileLine)
                guard key.withUnsafeBufferPointer({ gh_ticket_keys_use($0.baseAddress!) }) == 1 else {
                    throw failPolicy("cannot use ticket key \(path)")
                }
            }
            guard gh_ssl_ctx_use_ticket_keys(ctx) == 1 else { throw failPolicy("cannot set up session tickets") }
            _ = gh_ssl_ctx_set_num_tickets(ctx, 1)
        } else {
            _ = gh_ssl_ctx_set_num_tickets(ctx, 0)
        }
        if s.verifyClient != "off", let ca = s.clientCA {
            guard SSL_CTX_load_verify_locations(ctx, ca, nil) == 1, let names = SSL_load_client_CA_file(ca) else {
                throw ConfigError(file: first.file, line: first.line, directive: "client_ca", message: "cannot load \(ca): \(TLSError.openSSLText())")
            }
            SSL_CTX_set_client_CA_list(ctx, names)
            let mode = SSL_VERIFY_PEER | (s.verifyClient == "on" ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0)
            SSL_CTX_set_verify(ctx, mode, nil)
        }
        return ctx
    }

    /// The 80 bytes of an operator's ticket key file; anything else is a config error.
    private static func readTicketKey(_ path: String, file: String, line: Int) throws(ConfigError) -> [UInt8] {
        var key = [UInt8](repeating: 0, count: 81)
        guard let f = fopen(path, "rb") else {
            throw ConfigError(file: file, line: line, directive: "ticket_key_file", message: "cannot read \(path)")
        }
        let n = fread(&key, 1, 81, f)
        fclose(f)
        guard n == 80 else {
            throw ConfigError(file: file, line: line, directive: "ticket_key_file",
                              message: "\(path) must hold exactly 80 bytes (e.g. openssl rand 80 > FILE), not \(n)")
        }
        return Array(key[0..<80])
    }

    /// Session-cache counters of this listener (hits, misses, entries).
    public var sessionCache: (hits: Int, misses: Int, entries: Int) {
        (gh_ssl_ctx_sess_hits(defaultContext), gh_ssl_ctx_sess_misses(defaultContext), gh_ssl_ctx_sess_number(defaultContext))
    }

    /// Replaces the ticket key (the previous one keeps decrypting for one more period).
    public static func rotateTicketKeys() { _ = gh_ticket_keys_rotate() }

    /// Tickets issued, resumed under the current key, under the previous key, refused.
    public static var ticketStats: (issued: UInt, current: UInt, previous: UInt, refused: UInt) {
        var i: UInt = 0, c: UInt = 0, p: UInt = 0, u: UInt = 0
        gh_ticket_stats(&i, &c, &p, &u)
        return (i, c, p, u)
    }
}
