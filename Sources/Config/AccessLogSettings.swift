/// `access_log PATH [text|json] [buffer=SIZE];`: one line per request, written by the supervisor
/// to `path` (opened for append). Absent (`access_log off;`, the default) nothing is logged.
public struct AccessLogSettings: Sendable, Equatable {
    public enum Format: String, Sendable {
        /// nginx-like: `127.0.0.1 - [02/Dec/2026:18:37:49 +0000] "GET /x HTTP/1.1" 200 1234 0.052 upstream=…`
        case text
        /// One JSON object per line.
        case json
    }

    public var path: String
    public var format: Format
    /// Bytes of formatted lines each worker holds while the supervisor cannot take them (its ring);
    /// lines that do not fit are dropped and counted, never waited for.
    public var buffer: Int

    public static let defaultBuffer = 1 << 20
    /// Room for the longest line (a request-target is logged up to 2 KiB, escaped), so one always fits.
    public static let minBuffer = 64 << 10
    public static let maxBuffer = 256 << 20
    /// The most bytes of whole lines a worker hands the supervisor in one datagram: far below a
    /// unix socket's send buffer (208 KiB by default), far above the longest line.
    public static let datagramBytes = 64 << 10

    public init(path: String, format: Format = .text, buffer: Int = AccessLogSettings.defaultBuffer) {
        self.path = path
        self.format = format
        self.buffer = buffer
    }
}
