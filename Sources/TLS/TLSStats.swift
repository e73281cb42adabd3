/// TLS counters kept on the loop thread; the metrics endpoint reads them at scrape time.
public final class TLSStats {
    /// Why a handshake did not complete.
    public enum Failure: Int, CaseIterable, Sendable {
        case timeout, closed, protocolVersion, noSharedCipher, noApplicationProtocol, httpRequest, certificate, other

        public var label: String {
            switch self {
            case .timeout: return "timeout"
            case .closed: return "closed"
            case .protocolVersion: return "protocol_version"
            case .noSharedCipher: return "no_shared_cipher"
            case .noApplicationProtocol: return "no_application_protocol"
            case .httpRequest: return "http_request"
            case .certificate: return "certificate"
            case .other: return "other"
            }
        }
    }

    /// TLS client connections open.
    public var open = 0
    /// Completed handshakes by [version: 0 TLS 1.2, 1 TLS 1.3][resumed: 0 full, 1 resumed].
    public var handshakes = [[0, 0], [0, 0]]
    public var failures = [Int](repeating: 0, count: Failure.allCases.count)
    /// Called with each completed handshake's duration in ns (the metrics histogram).
    public var onHandshakeDuration: (UInt64) -> Void = { _ in }

    public init() {}
}
