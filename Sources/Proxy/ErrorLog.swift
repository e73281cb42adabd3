import Glibc
import Logging
import Runtime

/// The lines an operator acts on, as nginx's error_log: backend failures with the server and the
/// client, servers taken out of rotation and back, accepting paused. Each kind of line (per
/// server) is rate-limited, so a failing backend under load writes a few lines a second with a
/// count of those held back, not one per request.
final class ErrorLog {
    private let logger = Logger(label: "gatehouse")
    private var limit = LogRateLimit()

    private enum Kind: Int {
        case upstreamFailure, serverDown, serverUp, acceptPaused
    }

    /// A request failed on `server` for a reason of the backend's; `retrying` when it goes to
    /// another server (or a fresh connection) next.
    func upstreamFailed(_ f: ExchangeFailure, server: UpstreamServer, client: String, request: @autoclosure () -> String, retrying: Bool) {
        write(.upstreamFailure, Self.key(server), .error,
              "upstream \(Self.describe(f.cause)); server \(server.label) (backend \(server.group.config.name)); client \(client); "
              + "request \(request()); " + (retrying ? "retrying" : "answered \(f.status)"))
    }

    func serverDown(_ s: UpstreamServer, why: String) {
        write(.serverDown, Self.key(s), .error,
              "server \(s.label) (backend \(s.group.config.name)) taken out of rotation for \(Self.seconds(s.health.failTimeout)) after \(why)")
    }

    func serverUp(_ s: UpstreamServer) {
        write(.serverUp, Self.key(s), .notice, "server \(s.label) (backend \(s.group.config.name)) is back in rotation: a request succeeded")
    }

    func acceptPaused(_ why: String) {
        write(.acceptPaused, 0, .warning, "accepting paused: \(why)")
    }

    /// `key` tells apart what is limited apart within a kind: a server (its object, since indexes
    /// repeat from one backend group to the next).
    private func write(_ kind: Kind, _ key: Int, _ level: Logger.Level, _ message: @autoclosure () -> String) {
        guard logger.logLevel <= level else { return }
        let (ok, held) = limit.admit(kind.rawValue << 56 | (key & (1 << 56 - 1)), now: EventLoop.shared.now)
        guard ok else { return }
        let suffix = held > 0 ? " (\(held) more like this held back)" : ""
        logger.log(level: level, "\(message())\(suffix)")
    }

    static func key(_ s: UpstreamServer) -> Int { Int(bitPattern: UInt(bitPattern: ObjectIdentifier(s))) }

    static func describe(_ c: ExchangeFailure.Cause) -> String {
        switch c {
        case .connect(let e): return "connect failed: \(describe(e))"
        case .send(let e): return "failed while the request was sent: \(describe(e))"
        case .closedBeforeHead(let e): return "closed before a response head" + (e.map { ": \(describe($0))" } ?? "")
        case .headTimeout: return "sent no response head within upstream_header"
        case .badResponse: return "sent an invalid response"
        case .truncated(let e): return "ended the response early" + (e.map { ": \(describe($0))" } ?? "")
        case .queueFull: return "queue full"
        case .queueTimeout: return "no connection within queue_timeout"
        case .clientGone: return "client gone"
        case .clientTimeout(let t): return "client too slow (\(t))"
        case .badBody(let e): return "bad request body (\(e))"
        }
    }

    static func describe(_ e: IOError) -> String {
        if case .errno(let n) = e { return "\(e) (errno \(n))" }
        return e.description
    }

    static func seconds(_ nanos: UInt64) -> String {
        nanos % 1_000_000_000 == 0 ? "\(nanos / 1_000_000_000) s" : "\(Double(nanos) / 1e9) s"
    }
}
