/// Why a message was refused. Each maps to the status a proxy answers with; the connection is
/// always closed after, because the framing of what follows can no longer be trusted.
public enum HTTPError: Error, Equatable, Sendable {
    case badRequest(String)
    case uriTooLong
    case headersTooLarge
    case bodyTooLarge
    case versionNotSupported
    case notImplemented(String)
    case expectationFailed

    public var status: Int {
        switch self {
        case .badRequest: return 400
        case .uriTooLong: return 414
        case .headersTooLarge: return 431
        case .bodyTooLarge: return 413
        case .versionNotSupported: return 505
        case .notImplemented: return 501
        case .expectationFailed: return 417
        }
    }

    public var reason: String {
        switch self {
        case .badRequest(let why): return why
        case .uriTooLong: return "request-target too long"
        case .headersTooLarge: return "header section too large"
        case .bodyTooLarge: return "body too large"
        case .versionNotSupported: return "HTTP version not supported"
        case .notImplemented(let why): return why
        case .expectationFailed: return "unsupported expectation"
        }
    }
}
