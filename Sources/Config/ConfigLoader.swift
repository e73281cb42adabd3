/// Builds a validated `Configuration` from proxy.conf text. Every error names file, line and directive.
public enum ConfigLoader {
    public static func load(text: String, file: String) throws(ConfigError) -> Configuration {
        let directives = try DirectiveParser.parse(text, file: file)
        var b = Builder(file: file)
        try b.top(directives)
        return try b.validate()
    }
}

private struct Builder {
    let file: String
    var config = Configuration()
    /// Where `metrics` was written; nil while it is the default.
    var metricsLine: Int?
    /// Every `listen` address with its line, in file order.
    var listenLines: [(address: HostPort, line: Int)] = []

    init(file: String) { self.file = file }

    func error(_ d: Directive, _ message: String) -> ConfigError {
        ConfigError(file: file, line: d.line, directive: d.name, message: message)
    }

    func one(_ d: Directive) throws(ConfigError) -> String {
        guard d.block == nil else { throw error(d, "takes no block") }
        guard d.args.count == 1 else { throw error(d, "takes exactly one argument") }
        return d.args[0]
    }

    func duration(_ d: Directive) throws(ConfigError) -> UInt64 {
        let s = try one(d)
        do {
            return try Units.parseDuration(s)
        } catch .invalid {
            throw error(d, "invalid duration \"\(s)\" (use e.g. 500ms, 10s, 2m)")
        } catch {
            throw self.error(d, "duration \"\(s)\" is too long (at most \(Units.maxDuration / 3_600_000_000_000)h)")
        }
    }

    func size(_ d: Directive) throws(ConfigError) -> Int {
        let s = try one(d)
        do {
            return try Units.parseSize(s)
        } catch .invalid {
            throw error(d, "invalid size \"\(s)\" (use e.g. 512, 16k, 1m)")
        } catch {
            throw self.error(d, "size \"\(s)\" is too large (at most \(Units.maxSize >> 30)g)")
        }
    }

    /// A size that must not be 0.
    func positiveSize(_ d: Directive) throws(ConfigError) -> Int {
        let v = try size(d)
        guard v > 0 else { throw error(d, "must be greater than 0") }
        return v
    }

    /// A number, at least `min`. `orWord` names the word the directive also takes, for the message.
    func count(_ d: Directive, min: Int = 0, orWord: String? = nil) throws(ConfigError) -> Int {
        let s = try one(d)
        guard let v = Int(s), v >= min else {
            throw error(d, "invalid number \"\(s)\" (at least \(min)" + (orWord.map { ", or \($0)" } ?? "") + ")")
        }
        return v
    }

    func address(_ d: Directive, _ s: String) throws(ConfigError) -> HostPort {
        guard let hp = HostPort.parse(s) else { throw error(d, "invalid address \"\(s)\" (use host:port)") }
        return hp
    }

    /// `listen ADDR [reuseport];`, remembered with its line so a clash can name both.
    mutating func listen(_ d: Directive) throws(ConfigError) -> ListenAddress {
        guard d.block == nil, d.args.count == 1 || d.args.count == 2 else { throw error(d, "takes an address and optionally reuseport") }
        if d.args.count == 2, d.args[1] != "reuseport" { throw error(d, "unknown option \"\(d.args[1])\" (reuseport is the only one)") }
        let l = ListenAddress(try address(d, d.args[0]), reusePort: d.args.count == 2)
        listenLines.append((l.address, d.line))
        return l
    }

    func block(_ d: Directive) throws(ConfigError) -> [Directive] {
        guard let b = d.block else { throw error(d, "needs a { } block") }
        return b
    }

    mutating func top(_ ds: [Directive]) throws(ConfigError) {
        for d in ds {
            switch d.name {
            case "log_level":
                let v = try one(d)
                guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(v) else {
                    throw error(d, "unknown level \"\(v)\"")
                }
                config.logLevel = v
            case "workers":
                let v = try one(d)
                if v == "auto" { config.workers = 0 } else {
                    guard let n = Int(v), n >= 1, n <= 256 else { throw error(d, "expected a number of workers from 1 to 256, or auto, got \"\(v)\"") }
                    config.workers = n
                }
            case "request_id":
                config.requestID = try onOff(d)
            case "error_log":
                let v = try one(d)
                guard v == "stderr" || v.hasPrefix("/") else { throw error(d, "expected stderr or an absolute path, got \"\(v)\"") }
                config.errorLog = v
            case "pid_file":
                let v = try one(d)
                guard v == "off" || v.hasPrefix("/") else { throw error(d, "expected off or an absolute path, got \"\(v)\"") }
                config.pidFile = v == "off" ? nil : v
            case "access_log":
                config.accessLog = try accessLog(d)
            case "metrics":
                let v = try one(d)
                config.metrics = v == "off" ? nil : try address(d, v)
                metricsLine = d.line
            case "buffer_size":
                let v = try size(d)
                guard v >= 4096, v <= 1 << 20 else { throw error(d, "must be between 4k and 1m") }
                config.bufferSize = v
            case "request_buffer", "response_buffer":
                let v = try size(d)
                guard v >= 4096 else { throw error(d, "must be at least 4k") }
                if d.name == "request_buffer" { config.requestBuffer = v } else { config.responseBuffer = v }
            case "buffer_cache":
                config.bufferCacheCount = try count(d)
            case "park_after":
                config.parkAfter = try duration(d)
            case "timeouts":
                for c in try block(d) { try timeout(c) }
            case "limits":
                for c in try block(d) { try limit(c) }
            case "backend":
                guard d.args.count == 1 else { throw error(d, "takes a name") }
                guard config.backend(named: d.args[0]) == nil else { throw error(d, "backend \"\(d.args[0])\" is defined twice") }
                var g = BackendGroup(name: d.args[0])
                // TLS to the servers: "tls on;" and its options, in any order.
                var tlsOn = false
                var tls = UpstreamTLS()
                var tlsOption: Directive?
                for c in try block(d) {
                    switch c.name {
                    case "tls": tlsOn = try onOff(c)
                    case "tls_ca":
                        let v = try one(c)
                        tls.caFile = v == "system" ? nil : resolve(v)
                        tlsOption = c
                    case "tls_server_name":
                        tls.serverName = try one(c)
                        tlsOption = c
                    case "tls_verify":
                        tls.verify = try onOff(c)
                        tlsOption = c
                    default: try backend(c, &g)
                    }
                }
                if let c = tlsOption, !tlsOn { throw error(c, "needs \"tls on;\" in this backend block") }
                if tlsOn { g.tls = tls }
                guard !g.servers.isEmpty else { throw error(d, "backend \"\(g.name)\" has no server") }
                config.backends.append(g)
            case "server":
                guard d.args.isEmpty else { throw error(d, "takes no arguments") }
                var s = ServerBlock()
                for c in try block(d) {
                    switch c.name {
                    case "listen": s.listen.append(try listen(c))
                    case "proxy_pass": s.backend = try one(c)
                    case "http2": s.http2 = try onOff(c)
                    case "tls":
                        guard s.tls == nil else { throw error(c, "only one tls block per server") }
                        var t = TLSSettings()
                        for x in try block(c) { try tls(x, &t) }
                        guard !t.certificates.isEmpty else { throw error(c, "tls block has no certificate") }
                        guard t.certificates.contains(where: { $0.names.isEmpty }) else {
                            throw error(c, "tls block needs a default certificate (one without server names)")
                        }
                        if t.verifyClient != "off" && t.clientCA == nil {
                            throw error(c, "verify_client \(t.verifyClient) needs client_ca")
                        }
                        s.tls = t
                    default: throw error(c, "unknown directive in server block")
                    }
                }
                if s.http2, var t = s.tls, !t.alpnSet {
                    t.alpn = ["h2", "http/1.1"]
                    s.tls = t
                }
                guard !s.listen.isEmpty else { throw error(d, "server block has no listen") }
                guard !s.backend.isEmpty else { throw error(d, "server block has no proxy_pass") }
                serverLines.append(d)
                config.servers.append(s)
            default:
                throw error(d, "unknown directive")
            }
        }
    }

    /// `access_log off;` or `access_log PATH [text|json] [buffer=SIZE];` (in any order after the path).
    func accessLog(_ d: Directive) throws(ConfigError) -> AccessLogSettings? {
        guard d.block == nil, (1...3).contains(d.args.count) else { throw error(d, "takes off, or a path, a format (text or json) and buffer=SIZE") }
        let path = d.args[0]
        if path == "off" {
            guard d.args.count == 1 else { throw error(d, "off takes nothing after it") }
            return nil
        }
        guard path.hasPrefix("/") else { throw error(d, "expected off or an absolute path, got \"\(path)\"") }
        var settings = AccessLogSettings(path: path)
        for option in d.args.dropFirst() {
            if let f = AccessLogSettings.Format(rawValue: option) {
                settings.format = f
            } else if option.hasPrefix("buffer=") {
                let text = String(option.dropFirst("buffer=".count))
                guard let v = Units.size(text), v >= AccessLogSettings.minBuffer, v <= AccessLogSettings.maxBuffer else {
                    throw error(d, "buffer=\(text): expected a size from 64k to 256m")
                }
                settings.buffer = v
            } else {
                throw error(d, "unknown option \"\(option)\" (text, json or buffer=SIZE)")
            }
        }
        return settings
    }

    var serverLines: [Directive] = []
    var headerLimitLine = 1

    mutating func timeout(_ d: Directive) throws(ConfigError) {
        let v = try duration(d)
        guard v > 0 else { throw error(d, "must be greater than 0") }
        switch d.name {
        case "client_header": config.timeouts.clientHeader = v
        case "client_body": config.timeouts.clientBody = v
        case "client_send": config.timeouts.clientSend = v
        case "keepalive": config.timeouts.keepAlive = v
        case "upstream_connect": config.timeouts.upstreamConnect = v
        case "upstream_header": config.timeouts.upstreamHeader = v
        case "upstream_read": config.timeouts.upstreamRead = v
        case "upstream_send": config.timeouts.upstreamSend = v
        case "drain": config.timeouts.drain = v
        case "tunnel": config.timeouts.tunnel = v
        default: throw error(d, "unknown timeout")
        }
    }

    mutating func limit(_ d: Directive) throws(ConfigError) {
        switch d.name {
        case "max_connections": config.limits.maxConnections = try count(d, min: 1)
        case "max_header_bytes":
            config.limits.maxHeaderBytes = try positiveSize(d)
            headerLimitLine = d.line
        case "max_uri_bytes": config.limits.maxURIBytes = try positiveSize(d)
        case "max_headers": config.limits.maxHeaders = try count(d, min: 1)
        case "max_body_bytes": config.limits.maxBodyBytes = UInt64(try size(d))
        case "keepalive_requests": config.limits.maxKeepAliveRequests = try count(d, min: 1)
        case "buffer_memory":
            let v = try size(d)
            guard v >= 1 << 20 else { throw error(d, "must be at least 1m") }
            config.limits.bufferMemory = v
        case "min_rate": config.limits.minRate = try count(d)
        case "h2_max_concurrent_streams": config.limits.h2MaxConcurrentStreams = try count(d, min: 1)
        case "min_rate_grace": config.limits.minRateGrace = try duration(d)
        default: throw error(d, "unknown limit")
        }
    }

    func backend(_ d: Directive, _ g: inout BackendGroup) throws(ConfigError) {
        switch d.name {
        case "server":
            let a = try address(d, try one(d))
            guard a.port != 0 else { throw error(d, "port 0: a server needs its real port") }
            g.servers.append(a)
        case "balance":
            let v = try one(d)
            guard let b = Balance(rawValue: v) else { throw error(d, "unknown method \"\(v)\" (round_robin or least_conn)") }
            g.balance = b
        case "max_connections": g.maxConnections = try count(d, min: 1)
        case "max_idle": g.maxIdle = try one(d) == "auto" ? nil : try count(d, orWord: "auto")
        case "idle_timeout": g.idleTimeout = try duration(d)
        case "max_requests": g.maxRequestsPerConnection = try count(d, min: 1)
        case "queue_size": g.queueSize = try count(d)
        case "queue_timeout": g.queueTimeout = try duration(d)
        case "max_fails": g.maxFails = try count(d, min: 1)
        case "fail_timeout": g.failTimeout = try duration(d)
        case "retry": g.retry = try onOff(d)
        default: throw error(d, "unknown directive in backend block")
        }
    }

    func tls(_ d: Directive, _ t: inout TLSSettings) throws(ConfigError) {
        switch d.name {
        case "certificate":
            guard d.block == nil, d.args.count >= 2 else { throw error(d, "takes a certificate file, a key file and optional server names") }
            let names = d.args.dropFirst(2).map { $0.lowercased() }
            for n in names where n.isEmpty || n.contains("/") || (n.contains("*") && !n.hasPrefix("*.")) {
                throw error(d, "invalid server name \"\(n)\" (a host name, or *.domain)")
            }
            t.certificates.append(TLSCertificate(certificateFile: resolve(d.args[0]), keyFile: resolve(d.args[1]),
                                                 names: names, file: file, line: d.line))
        case "protocols":
            guard d.block == nil, !d.args.isEmpty else { throw error(d, "takes TLSv1.2 and/or TLSv1.3") }
            let order = ["TLSv1.2", "TLSv1.3"]
            for v in d.args where !order.contains(v) {
                throw error(d, "unsupported protocol \"\(v)\" (TLSv1.2 or TLSv1.3; older versions are refused)")
            }
            t.minVersion = order.first { d.args.contains($0) }!
            t.maxVersion = order.last { d.args.contains($0) }!
        case "ciphers": t.ciphers = try one(d)
        case "groups": t.groups = try one(d)
        case "alpn":
            guard d.block == nil, !d.args.isEmpty else { throw error(d, "takes one or more protocol names") }
            for p in d.args where p.isEmpty || p.utf8.count > 255 { throw error(d, "invalid protocol name \"\(p)\"") }
            t.alpn = d.args
            t.alpnSet = true
        case "handshake_timeout":
            t.handshakeTimeout = try duration(d)
            guard t.handshakeTimeout > 0 else { throw error(d, "must be greater than 0") }
        case "session_cache": t.sessionCacheSize = try count(d)
        case "session_timeout": t.sessionTimeout = try duration(d)
        case "session_tickets": t.sessionTickets = try onOff(d)
        case "ticket_key_file":
            t.ticketKeyFile = resolve(try one(d))
            t.ticketKeyFileLine = d.line
        case "ticket_key_rotation":
            t.ticketKeyRotation = try duration(d)
            guard t.ticketKeyRotation >= Timeouts.sec else { throw error(d, "must be at least 1s") }
        case "verify_client":
            let v = try one(d)
            guard ["off", "optional", "on"].contains(v) else { throw error(d, "use off, optional or on") }
            t.verifyClient = v
        case "client_ca": t.clientCA = resolve(try one(d))
        case "client_subject_header":
            let v = try one(d)
            guard !v.isEmpty, v.utf8.count <= 256, v.utf8.allSatisfy({ $0 == UInt8(ascii: "-") || ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) }) else {
                throw error(d, "invalid header name \"\(v)\"")
            }
            t.clientSubjectHeader = v
        default: throw error(d, "unknown directive in tls block")
        }
    }

    func onOff(_ d: Directive) throws(ConfigError) -> Bool {
        let v = try one(d)
        guard v == "on" || v == "off" else { throw error(d, "use on or off") }
        return v == "on"
    }

    /// A relative path in the config is relative to the config file's directory.
    func resolve(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        guard let slash = file.lastIndex(of: "/") else { return path }
        return String(file[...slash]) + path
    }

    func validate() throws(ConfigError) -> Configuration {
        guard !config.servers.isEmpty else {
            throw ConfigError(file: file, line: 1, directive: "server", message: "no server block: nothing to listen on")
        }
        for (s, d) in zip(config.servers, serverLines) where config.backend(named: s.backend) == nil {
            throw ConfigError(file: file, line: d.line, directive: "proxy_pass", message: "unknown backend \"\(s.backend)\"")
        }
        guard config.limits.maxHeaderBytes <= config.bufferSize else {
            throw ConfigError(file: file, line: headerLimitLine, directive: "max_header_bytes", message: "must not exceed buffer_size (\(config.bufferSize))")
        }
        try checkListenClashes()
        return config
    }

    /// One address, one listener: two server blocks on the same address would split its traffic,
    /// and the metrics listener shares its address with nothing. Named at the later line, with the
    /// earlier one.
    func checkListenClashes() throws(ConfigError) {
        for (i, l) in listenLines.enumerated() {
            if let earlier = listenLines[..<i].first(where: { ListenAddress.overlap($0.address, l.address) }) {
                throw ConfigError(file: file, line: l.line, directive: "listen",
                                  message: "\(l.address) is also bound at \(file):\(earlier.line) (one address, one listen)")
            }
            guard let m = config.metrics, ListenAddress.overlap(m, l.address) else { continue }
            if let ml = metricsLine {
                throw ConfigError(file: file, line: l.line, directive: "listen", message: "\(l.address) is also bound at \(file):\(ml) by metrics")
            }
            throw ConfigError(file: file, line: l.line, directive: "listen",
                              message: "\(l.address) is also the metrics listener (default \(m)); move one, or say metrics off")
        }
    }
}
