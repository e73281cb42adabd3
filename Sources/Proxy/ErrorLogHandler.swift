import Glibc
import Logging
import Runtime

/// The error log's writer: one line per message, `2026-12-02T15:04:05.123Z [error] message
/// key=value…`, written whole with one write(2) to stderr or to the `error_log` file (opened for
/// append, as nginx's: a file on local disk takes a line without blocking the loop for long).
public struct ErrorLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let target: LogTarget

    public init(target: LogTarget, level: Logger.Level) {
        self.target = target
        logLevel = level
    }

    /// Opens `path` for appending (created 0644 when missing), or says why it cannot.
    public static func open(path: String) -> Result<Int32, IOError> {
        let fd = Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        return fd >= 0 ? .success(fd) : .failure(.errno(errno))
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line = "\(Self.timestamp()) [\(event.level)] \(event.message)"
        let all = metadata.merging(event.metadata ?? [:]) { $1 }
        for (k, v) in all.sorted(by: { $0.key < $1.key }) { line += " \(k)=\(v)" }
        line += "\n"
        var bytes = Array(line.utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.write(target.fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }  // a log that cannot be written must not stop the proxy
            off += n
        }
    }

    /// UTC, to the millisecond, as ISO 8601.
    static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = ts.tv_sec
        var tm = Glibc.tm()
        gmtime_r(&t, &tm)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let ms = Int(ts.tv_nsec / 1_000_000)
        let msText = ms < 10 ? "00\(ms)" : ms < 100 ? "0\(ms)" : "\(ms)"
        return "\(tm.tm_year + 1900)-\(two(tm.tm_mon + 1))-\(two(tm.tm_mday))T\(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec)).\(msText)Z"
    }
}

/// Where log lines go: stderr, or a file that SIGUSR1 reopens by its path (after logrotate moved
/// it away), as nginx's `-s reopen`. One thread: the swap needs no lock.
public final class LogTarget: @unchecked Sendable {
    public private(set) var fd: Int32
    public let path: String?

    /// stderr.
    public init() {
        fd = 2
        path = nil
    }

    /// `path` opened for appending; fails with the errno.
    public init(path: String) throws(IOError) {
        switch ErrorLogHandler.open(path: path) {
        case .success(let fd): self.fd = fd
        case .failure(let e): throw e
        }
        self.path = path
    }

    /// Opens the path again and writes there from now on; the old file keeps what it has.
    /// Nil on success, else why (the old file is kept).
    @discardableResult
    public func reopen() -> IOError? {
        guard let path else { return nil }
        switch ErrorLogHandler.open(path: path) {
        case .success(let new):
            let old = fd
            fd = new
            close(old)
            return nil
        case .failure(let e):
            return e
        }
    }
}
