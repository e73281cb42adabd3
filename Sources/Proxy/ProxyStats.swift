import Runtime

/// Plain counters kept on the loop thread; the metrics endpoint reads them at scrape time.
/// Integers, not atomics: there is one thread.
public final class ProxyStats {
    public enum Timeout: Int, CaseIterable {
        case clientHeader, clientBody, clientSend, upstreamConnect, upstreamHeader, upstreamRead, upstreamSend, queue
        /// A client sent its body, or read the response, slower than `limits.min_rate`.
        case requestMinRate, responseMinRate
        /// A tunnel (upgraded connection) moved no byte either way for `timeouts.tunnel`.
        case tunnel

        var label: String {
            switch self {
            case .clientHeader: return "client_header"
            case .clientBody: return "client_body"
            case .clientSend: return "client_send"
            case .upstreamConnect: return "upstream_connect"
            case .upstreamHeader: return "upstream_header"
            case .upstreamRead: return "upstream_read"
            case .upstreamSend: return "upstream_send"
            case .queue: return "queue"
            case .requestMinRate: return "request_min_rate"
            case .responseMinRate: return "response_min_rate"
            case .tunnel: return "tunnel"
            }
        }
    }

    let clientPhases = CounterArray(count: ClientPhase.allCases.count)
    public var clientConnections = 0
    public var acceptedTotal = 0
    public var acceptPausesTotal = 0
    public var requestsInFlight = 0
    public var badRequestsTotal = 0
    let timeouts = CounterArray(count: Timeout.allCases.count)
    public var retriesTotal = 0
    public var staleRetriesTotal = 0
    /// Responses that started but ended early (counted as 502, apart from the status sent).
    public var truncatedResponsesTotal = 0
    /// Requests given up because the client hung up (499).
    public var clientAbortsTotal = 0
    /// Upgraded connections (WebSocket and other `Upgrade:` protocols): open now, ever opened,
    /// and the bytes they carried each way.
    public var tunnelsOpen = 0
    public var tunnelsTotal = 0
    public var tunnelBytesUp = 0
    public var tunnelBytesDown = 0
    /// HTTP/2 client connections and their request streams.
    public var h2ConnectionsOpen = 0
    public var h2ConnectionsTotal = 0
    public var h2StreamsOpen = 0
    public var h2StreamsTotal = 0
    /// Requests over HTTP/2 answered (counted as `gatehouse_requests_total` counts; the rest of
    /// that total came over HTTP/1.x).
    public var h2RequestsTotal = 0
    /// Protocol misbehaviour seen on HTTP/2 connections (invalid frames, empty DATA).
    public var h2Misbehaviour = 0
    /// GOAWAY frames sent, by `GoAwayReason`.
    var h2GoAwaysSent = [Int](repeating: 0, count: GoAwayReason.allCases.count)

    /// Why a GOAWAY went out, by its error code.
    enum GoAwayReason: Int, CaseIterable {
        case noError, protocolError, flowControl, enhanceYourCalm, other

        init(code: UInt32) {
            switch code {
            case 0x0: self = .noError
            case 0x1: self = .protocolError
            case 0x3: self = .flowControl
            case 0xb: self = .enhanceYourCalm
            default: self = .other
            }
        }

        var label: String {
            switch self {
            case .noError: return "no_error"
            case .protocolError: return "protocol_error"
            case .flowControl: return "flow_control_error"
            case .enhanceYourCalm: return "enhance_your_calm"
            case .other: return "other"
            }
        }
    }

    deinit {
        clientPhases.deallocate()
        timeouts.deallocate()
    }

    func timedOut(_ t: Timeout) { timeouts[t.rawValue] += 1 }
}
