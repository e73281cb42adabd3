import ArgumentParser
import CLinux
import Config
import Glibc
import Logging
import Proxy
import TLS

/// The gatehouse command: run the proxy from a config file or from one line of flags.
@main
struct Gatehouse: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gatehouse",
        abstract: "A single-threaded reverse proxy for slow HTTP backends."
    )

    @Option(name: [.short, .customLong("config")], help: "Configuration file (nginx-like syntax).")
    var config: String?

    @Flag(name: .customLong("check"), help: "Validate the configuration and exit.")
    var check = false

    @Option(name: .customLong("listen"), help: "One-line mode: address to listen on (host:port; port 0 picks a free one).")
    var listen: [String] = []

    @Option(name: .customLong("backend"), help: "One-line mode: a backend server (host:port); repeat for several.")
    var backend: [String] = []

    @Option(name: .customLong("metrics"), help: "One-line mode: metrics address (host:port), or off.")
    var metrics: String?

    @Option(name: .customLong("tls-cert"), help: "One-line mode: certificate chain (PEM); --listen then speaks TLS.")
    var tlsCert: String?

    @Option(name: .customLong("tls-key"), help: "One-line mode: the certificate's private key (PEM).")
    var tlsKey: String?

    @Option(name: .customLong("log-level"), help: "Override the log level.")
    var logLevel: String?

    @Option(name: .customLong("workers"), help: "Worker processes: a number, or auto (one per usable CPU); overrides `workers` in the file.")
    var workers: String?

    @Option(name: .customLong("worker-slot"), help: .private)
    var workerSlot: Int?

    @Option(name: .customShort("s"), help: "Signal the running gatehouse (the pid_file of its config): reload, reopen (logs), stop (drain), quit (at once).")
    var signal: String?

    @Argument(help: "The same as -s: `gatehouse reload -c proxy.conf` signals the running gatehouse.")
    var command: String?

    @Flag(name: .customLong("version"), help: "Print versions and exit.")
    var version = false

    mutating func run() throws {
        // Before anything can write to a closed pipe or be stopped by a terminal's Ctrl-\ (a
        // supervisor handles SIGQUIT itself, and its workers must not dump core on it).
        Glibc.signal(SIGPIPE, SIG_IGN)
        gh_block_signals()  // each taken from a signalfd later; none may end the process before
        if workerSlot != nil { Glibc.signal(SIGQUIT, SIG_IGN) }
        if version {
            writeLine(1, "gatehouse \(BuildInfo.version) (\(BuildInfo.openSSL))")
            return
        }
        let (configuration, text) = try loadConfiguration()
        if command != nil && signal != nil && command != signal {
            throw ValidationError("give `\(command!)` or -s \(signal!), not both")
        }
        // Certificates, TLS policy and the error log are only proven by opening them: before a
        // start, for --check (as nginx -t), and before a reload is signalled, as the supervisor
        // will check it (so the error shows where the reload was asked for).
        let name = signal ?? command
        if name == nil || name == "reload" {
            do { try Supervisor.verify(configuration) } catch {
                writeLine(2, "gatehouse: \(error)")
                throw ExitCode(1)
            }
        }
        if let name {
            try PidFile.send(name, label: signal != nil ? "-s \(name)" : name, configuration: configuration, file: config ?? "proxy.conf")
            return
        }
        if check {
            if let why = AccessLogSink.check(configuration.accessLog) {  // the access log must open too
                writeLine(2, "gatehouse: \(why)")
                throw ExitCode(1)
            }
            writeLine(1, "gatehouse: configuration \(config ?? "(command line)") is valid")
            return
        }
        let level = Logger.Level(rawValue: logLevel ?? configuration.logLevel) ?? .info
        var target = LogTarget()
        if configuration.errorLog != "stderr" {
            do { target = try LogTarget(path: configuration.errorLog) } catch {
                writeLine(2, "gatehouse: error_log \(configuration.errorLog): \(error)")
                throw ExitCode(1)
            }
        }
        let logTarget = target
        LoggingSystem.bootstrap { _ in ErrorLogHandler(target: logTarget, level: level) }
        let logger = Logger(label: "gatehouse")
        let count = try workerCount(configuration)
        // The supervisor writes the access log: with one on, even `workers 1` runs under it.
        if workerSlot == nil && (count > 1 || configuration.accessLog != nil) {
            do {
                let supervisor = try Supervisor(configuration: configuration, text: text, workers: count, arguments: CommandLine.arguments,
                                                configPath: text == nil ? nil : (config ?? "proxy.conf"), logger: logger, log: logTarget)
                let pid = try PidFile(configuration.pidFile)
                defer { pid?.remove() }
                try supervisor.run()
            } catch {
                writeLine(2, "gatehouse: \(error)")
                throw ExitCode(1)
            }
            writeLine(1, "gatehouse: stopped")
            return
        }
        var inherited: ProxyServer.Inherited?
        if workerSlot != nil {
            guard WorkerHandover.followSupervisor(), let i = WorkerHandover.inherited() else {
                writeLine(2, "gatehouse: --worker-slot is for the supervisor's workers")
                throw ExitCode(1)
            }
            if let why = WorkerHandover.mismatch(configuration, i) {
                logger.error("worker \(workerSlot!): \(why)")
                throw ExitCode(Supervisor.configChanged)
            }
            inherited = i
        }
        let server: ProxyServer
        do {
            server = try ProxyServer(config: configuration, logger: logger, inherited: inherited)
        } catch {
            writeLine(2, "gatehouse: \(error)")
            throw ExitCode(1)
        }
        server.reopenLogs = { Self.reopen(logTarget, logger) }
        if inherited != nil {
            // A worker: the supervisor told where it listens, and tells when it stops.
            server.onRunning = WorkerHandover.sayReady
            server.run()
            return
        }
        for (kind, address) in server.boundAddresses {
            writeLine(1, "gatehouse: \(kind) listening on \(address)")
        }
        let pid: PidFile?
        do { pid = try PidFile(configuration.pidFile) } catch {
            writeLine(2, "gatehouse: \(error)")
            throw ExitCode(1)
        }
        defer { pid?.remove() }
        server.run()
        writeLine(1, "gatehouse: stopped")
    }

    static func reopen(_ target: LogTarget, _ logger: Logger) {
        guard target.path != nil else { return }  // stderr: nothing to reopen
        if let e = target.reopen() {
            logger.error("SIGUSR1: cannot reopen error_log \(target.path ?? "-"): \(e); still writing to the old file")
        } else {
            logger.notice("SIGUSR1: error_log reopened")
        }
    }

    /// `--workers`, else the file's `workers`; auto is one per CPU this process may use.
    func workerCount(_ c: Configuration) throws -> Int {
        var n = c.workers
        if let w = workers {
            if w == "auto" { n = 0 } else {
                guard let v = Int(w), v >= 1, v <= 256 else { throw ValidationError("--workers \(w): expected 1 to 256, or auto") }
                n = v
            }
        }
        return n == 0 ? usableCPUs() : n
    }

    /// The configuration, and its text when it came from a file (the supervisor hands that text to
    /// its workers; a worker reads the one handed to it).
    func loadConfiguration() throws -> (Configuration, String?) {
        if !listen.isEmpty || !backend.isEmpty {
            guard config == nil else { throw ValidationError("use either -c FILE or --listen/--backend, not both") }
            guard !listen.isEmpty, !backend.isEmpty else { throw ValidationError("one-line mode needs --listen and at least one --backend") }
            let l = try listen.map { s -> HostPort in
                guard let hp = HostPort.parse(s) else { throw ValidationError("--listen \(s): expected host:port") }
                return hp
            }
            let b = try backend.map { s -> HostPort in
                guard let hp = HostPort.parse(s) else { throw ValidationError("--backend \(s): expected host:port") }
                return hp
            }
            var m: HostPort? = nil
            if let ms = metrics, ms != "off" {
                guard let hp = HostPort.parse(ms) else { throw ValidationError("--metrics \(ms): expected host:port") }
                m = hp
            }
            var c = Configuration.quick(listen: l, backends: b, metrics: m)
            switch (tlsCert, tlsKey) {
            case (nil, nil): break
            case (let cert?, let key?):
                var t = TLSSettings()
                t.certificates = [TLSCertificate(certificateFile: cert, keyFile: key, file: "--tls-cert", line: 0)]
                c.servers[0].tls = t
            default: throw ValidationError("--tls-cert and --tls-key go together")
            }
            return (c, nil)
        }
        let path = config ?? "proxy.conf"
        guard let text = (workerSlot != nil ? WorkerHandover.configText() : nil) ?? Self.readFile(path) else {
            writeLine(2, "gatehouse: cannot read configuration file \(path)")
            throw ExitCode(1)
        }
        do {
            return (try ConfigLoader.load(text: text, file: path), text)
        } catch {
            writeLine(2, "gatehouse: \(error)")
            throw ExitCode(1)
        }
    }

    static func readFile(_ path: String) -> String? {
        guard let f = fopen(path, "r") else { return nil }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&chunk, 1, chunk.count, f)
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Writes a line straight to an fd: unbuffered, so a test reading our stdout through a pipe sees
/// the bound addresses at once.
func writeLine(_ fd: Int32, _ text: String) {
    let line = text + "\n"
    _ = line.utf8.withContiguousStorageIfAvailable { Glibc.write(fd, $0.baseAddress, $0.count) }
}
