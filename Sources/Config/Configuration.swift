/// A host and port as written in the config; resolved to a socket address at startup.
public struct HostPort: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: UInt16
    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Parses "host:port" or "[v6]:port".
    public static func parse(_ text: String) -> HostPort? {
        var host: Substring
        var portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portText = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, let port = UInt16(portText) else { return nil }
        if host == "*" { host = "0.0.0.0" }
        return HostPort(host: String(host), port: port)
    }
}

/// How a backend group picks a server.
public enum Balance: String, Sendable {
    case roundRobin = "round_robin"
    case leastConnections = "least_conn"
}

/// Timeouts, in nanoseconds. Defaults follow nginx where it has one.
public struct Timeouts: Sendable, Equatable {
    /// Reading a request head, from its first wait (nginx client_header_timeout).
    public var clientHeader: UInt64 = 10 * sec
    /// Between two reads of a request body (nginx client_body_timeout).
    public var clientBody: UInt64 = 30 * sec
    /// Between two writes to a client that does not read (nginx send_timeout).
    public var clientSend: UInt64 = 30 * sec
    /// An idle keep-alive client connection (nginx keepalive_timeout 75s; we use 60s).
    public var keepAlive: UInt64 = 60 * sec
    /// Connecting to a backend server (nginx proxy_connect_timeout 60s; a dead host should fail faster).
    public var upstreamConnect: UInt64 = 5 * sec
    /// From the request's end until the response head arrives (nginx proxy_read_timeout).
    public var upstreamHeader: UInt64 = 60 * sec
    /// Between two reads of a response body.
    public var upstreamRead: UInt64 = 60 * sec
    /// Between two writes of a request body to a backend.
    public var upstreamSend: UInt64 = 60 * sec
    /// How long SIGTERM waits for in-flight requests.
    public var drain: UInt64 = 30 * sec
    /// An upgraded connection (WebSocket) with no byte either way (nginx proxy_read_timeout, which
    /// is 60s there; WebSockets idle for minutes between messages, so 1h as HAProxy's tunnel
    /// timeout is commonly set).
    public var tunnel: UInt64 = 3600 * sec

    public init() {}
    static let sec: UInt64 = 1_000_000_000
}

/// Limits on what a client may send and hold.
public struct Limits: Sendable, Equatable {
    /// Client connections held at once; beyond it, accepting pauses.
    public var maxConnections = 16_000
    /// Request head bytes (431 beyond).
    public var maxHeaderBytes = 16 * 1024
    /// Request-target bytes (414 beyond).
    public var maxURIBytes = 8 * 1024
    /// Header fields in a request (431 beyond).
    public var maxHeaders = 100
    /// Request body bytes, 0 for no limit (413 beyond).
    public var maxBodyBytes: UInt64 = 0
    /// Requests served on one client connection before it is closed (nginx keepalive_requests).
    public var maxKeepAliveRequests = 10_000
    /// Buffer memory (bytes) beyond which no connection takes a buffer past its first in either
    /// direction: reads then wait for the other side to drain (backpressure) instead of allocating.
    public var bufferMemory = 64 * 1024 * 1024
    /// The slowest a client may send a request body or read a response, in bytes per second of
    /// the time spent waiting on it, once `minRateGrace` of waiting has passed (Kestrel's
    /// MinRequestBodyDataRate / MinResponseDataRate); 0 turns it off.
    public var minRate = 240
    public var minRateGrace: UInt64 = 5 * Timeouts.sec
    /// HTTP/2 streams a client may have open at once on one connection (nginx's default).
    public var h2MaxConcurrentStreams = 128
    public init() {}
}

/// A named group of backend servers with its pool and queue settings.
public struct BackendGroup: Sendable, Equatable {
    public var name: String
    public var servers: [HostPort] = []
    public var balance: Balance = .roundRobin
    /// Upstream connections open at once per server (leased plus connecting). Beyond it requests
    /// queue (`queueSize`, `queueTimeout`), so a backend that slows down is never flooded with as
    /// many connections as there are clients waiting, and the proxy's descriptors stay bounded.
    /// High enough that it is not what limits thousands of clients on a fast event-driven backend.
    public var maxConnections = 10_000
    /// Idle keep-alive connections kept per server, at most; nil ("auto"): as many as recent
    /// demand asks for (the decayed peak of connections in use at once), up to `maxConnections`.
    public var maxIdle: Int?
    /// How long a pooled connection may stay idle.
    public var idleTimeout: UInt64 = 60 * Timeouts.sec
    /// Requests on one upstream connection before it is retired.
    public var maxRequestsPerConnection = 10_000
    /// Requests that may wait for a connection when every server is at its limit (503 beyond).
    public var queueSize = 10_000
    /// How long a request waits in that queue (503 with Retry-After after).
    public var queueTimeout: UInt64 = 5 * Timeouts.sec
    /// Consecutive failures that take a server out of rotation (passive health).
    public var maxFails = 3
    /// How long a failed server stays out before it is tried again.
    public var failTimeout: UInt64 = 10 * Timeouts.sec
    /// Retry an idempotent request (or one nothing was sent for) once on another server.
    public var retry = true
    /// Present when connections to these servers speak TLS.
    public var tls: UpstreamTLS?

    public init(name: String) { self.name = name }
}

/// One `listen` of a server block.
public struct ListenAddress: Sendable, Hashable {
    public var address: HostPort
    /// Set SO_REUSEPORT, so other processes may bind the same address and the kernel spreads
    /// connections among them (nginx's `listen ... reuseport`). Off by default: a second instance
    /// on the same port then fails to start instead of silently taking half the traffic.
    public var reusePort: Bool

    public init(_ address: HostPort, reusePort: Bool = false) {
        self.address = address
        self.reusePort = reusePort
    }

    /// Whether binding both would clash: the same port and the same host, or a wildcard host
    /// (0.0.0.0 covers every IPv4 address, :: every address since sockets are not v6-only). Port 0
    /// never clashes: each socket gets its own port. Host names are not resolved here (binding
    /// catches those).
    public static func overlap(_ a: HostPort, _ b: HostPort) -> Bool {
        guard a.port == b.port, a.port != 0 else { return false }
        if a.host.lowercased() == b.host.lowercased() || a.host == "::" || b.host == "::" { return true }
        return (a.host == "0.0.0.0" && !b.host.contains(":")) || (b.host == "0.0.0.0" && !a.host.contains(":"))
    }
}

/// A client-facing listener and the group it forwards to.
public struct ServerBlock: Sendable, Equatable {
    public var listen: [ListenAddress] = []
    public var backend: String = ""
    /// Present when the listeners of this block speak TLS.
    public var tls: TLSSettings?
    /// HTTP/2 to clients (`http2 on;`): on cleartext listeners, connections that open with the
    /// HTTP/2 preface (prior knowledge, h2c); on TLS listeners, `h2` first in ALPN unless `alpn`
    /// names the protocols itself. A TLS block whose `alpn` names h2 speaks HTTP/2 either way.
    public var http2 = false
    public init() {}
}

/// The whole validated, immutable configuration.
public struct Configuration: Sendable, Equatable {
    public var servers: [ServerBlock] = []
    public var backends: [BackendGroup] = []
    /// Where /metrics and /health answer; nil turns the listener off.
    ///
    /// 9101, not Prometheus's own 9090: the exporter range 9100-9999 of Prometheus's port
    /// allocations is full, and 9101 is the HAProxy exporter's, retired in 2023 since HAProxy
    /// serves its own metrics; a host that runs Gatehouse in HAProxy's place has no use for it.
    public static let defaultMetricsPort: UInt16 = 9101
    public var metrics: HostPort? = HostPort(host: "127.0.0.1", port: Configuration.defaultMetricsPort)
    public var logLevel = "info"
    /// Where the error log goes: "stderr", or a file appended to.
    public var errorLog = "stderr"
    /// Where the supervisor writes its pid (for `gatehouse -s reload`), or nil for none.
    public var pidFile: String?
    /// One line per request (`access_log`); nil (off) by default. Needs the supervisor, which
    /// writes the file: with it on, even `workers 1` runs under one.
    public var accessLog: AccessLogSettings?
    /// Worker processes: 1 runs the proxy in this process, as always; more start a supervisor
    /// that binds the listeners and runs that many workers on them; 0 means one per usable CPU.
    public var workers = 1
    /// Every request gets an X-Request-ID to its backend: the client's when valid, else one we make.
    public var requestID = true
    /// Bytes per connection buffer: the high-water mark of a body in flight in each direction.
    public var bufferSize = 16 * 1024
    /// A request body up to this size is read whole before a backend connection is leased, so a
    /// slow client never holds a backend slot; a larger one streams once this much is buffered.
    public var requestBuffer = 64 * 1024
    /// A response up to this size is read from the backend as fast as it comes, so its connection
    /// goes back to the pool at once while the client drains at its own pace; beyond it, the
    /// response streams with backpressure.
    public var responseBuffer = 256 * 1024
    /// Idle buffers kept for reuse.
    public var bufferCacheCount = 1024
    /// A keep-alive client whose next request has not begun after this long gives back its task
    /// and buffer and becomes a small record the loop owns.
    public var parkAfter: UInt64 = 200 * 1_000_000
    public var timeouts = Timeouts()
    public var limits = Limits()
    public init() {}

    public func backend(named name: String) -> BackendGroup? { backends.first { $0.name == name } }

    /// The one-line mode: one listener in front of one group.
    public static func quick(listen: [HostPort], backends: [HostPort], metrics: HostPort?) -> Configuration {
        var c = Configuration()
        var g = BackendGroup(name: "default")
        g.servers = backends
        c.backends = [g]
        var s = ServerBlock()
        s.listen = listen.map { ListenAddress($0) }
        s.backend = "default"
        c.servers = [s]
        c.metrics = metrics
        return c
    }
}
