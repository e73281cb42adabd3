/// A certificate chain and its key, served to clients asking (by SNI) for one of `names`; with no
/// names it belongs to the default. Several entries for the same names with different key types
/// (RSA and ECDSA) sit side by side, and OpenSSL picks per client.
public struct TLSCertificate: Sendable, Equatable {
    public var certificateFile: String
    public var keyFile: String
    public var names: [String]
    /// Where the entry was written: a certificate that fails to load is reported there, like a
    /// syntax error, although only OpenSSL can tell.
    public var file: String
    public var line: Int

    public init(certificateFile: String, keyFile: String, names: [String] = [], file: String, line: Int) {
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.names = names
        self.file = file
        self.line = line
    }
}

/// How a listener terminates TLS. Defaults follow Mozilla's "intermediate" profile.
public struct TLSSettings: Sendable, Equatable {
    public var certificates: [TLSCertificate] = []
    /// Lowest and highest protocol versions: "TLSv1.2" or "TLSv1.3".
    public var minVersion = "TLSv1.2"
    public var maxVersion = "TLSv1.3"
    /// TLS 1.2 cipher list (TLS 1.3 suites are OpenSSL's defaults, all of which the profile allows).
    public var ciphers = TLSSettings.intermediateCiphers
    /// Key-exchange groups, most preferred first.
    public var groups = "X25519:prime256v1"
    /// ALPN protocols offered, in preference order (room for "h2" later).
    public var alpn = ["http/1.1"]
    /// `alpn` was given (so `http2 on` leaves it as it is).
    public var alpnSet = false
    /// A handshake must finish within this.
    public var handshakeTimeout: UInt64 = 10 * Timeouts.sec
    /// Server-side session cache entries (resumption by session id); 0 turns it off.
    public var sessionCacheSize = 20_000
    /// How long a session may be resumed, by id or by ticket.
    public var sessionTimeout: UInt64 = 3600 * Timeouts.sec
    /// Session tickets (resumption with no server state).
    public var sessionTickets = true
    /// Ticket keys are made at start and replaced this often; the previous key still decrypts for
    /// one more period, so a ticket lives between one and two periods.
    public var ticketKeyRotation: UInt64 = 3600 * Timeouts.sec
    /// 80 bytes of ticket key (16 name, 32 AES, 32 HMAC) shared by every process serving the port
    /// (`listen ... reuseport`), so a ticket from one is good at all; the operator rotates it. Replaces the
    /// keys made at start and their rotation.
    public var ticketKeyFile: String?
    /// The config line of `ticket_key_file`, for errors only OpenSSL's side can find.
    public var ticketKeyFileLine = 0
    /// Client certificates: "off", "optional" (asked for, checked if sent) or "on" (required).
    public var verifyClient = "off"
    /// CA bundle that client certificates must chain to.
    public var clientCA: String?
    /// Request header that carries the verified client certificate's subject to the backend.
    public var clientSubjectHeader = "X-Client-Subject"

    public init() {}

    /// Mozilla's intermediate TLS 1.2 suites (server-side guidelines v5.7).
    public static let intermediateCiphers = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
        "DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384", "DHE-RSA-CHACHA20-POLY1305",
    ].joined(separator: ":")
}

/// TLS from the proxy to the servers of a backend group.
public struct UpstreamTLS: Sendable, Equatable {
    /// CA bundle the servers' certificates must chain to; nil for the system store.
    public var caFile: String?
    /// Name sent by SNI and checked against the certificate; nil for the server's host.
    public var serverName: String?
    /// Verify the server's certificate and name (off only for testing).
    public var verify = true

    public init() {}
}
