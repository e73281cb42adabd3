import Glibc

/// Why an I/O operation did not complete. Carries the errno so callers can tell refused from reset.
public enum IOError: Error, Equatable, Sendable, CustomStringConvertible {
    case timedOut
    case closed
    case errno(Int32)

    public var description: String {
        switch self {
        case .timedOut: return "timed out"
        case .closed: return "closed"
        case .errno(let n): return String(cString: strerror(n))
        }
    }

    public var isRefusedOrReset: Bool {
        switch self {
        case .errno(let e): return e == ECONNREFUSED || e == ECONNRESET || e == EPIPE || e == ECONNABORTED
        default: return false
        }
    }
}
