import Glibc
import HTTP1
import Runtime

/// Who an exchange failed on (STYLE.md habit 7; pingora's ErrorSource).
enum FailedParty: Equatable {
    /// The client: it left, was too slow, or broke its body's framing.
    case client
    /// The backend server: it refused, reset, stalled or answered with something unusable.
    case upstream
    /// The proxy itself: no connection could be had in time (queue full or timed out).
    case proxy
}

/// Why one attempt to forward a request failed, with what follows from it: who failed, whether
/// any of the request reached the backend, whether any of the response reached the client, and so
/// whether the request may be sent again and what the client is told.
struct ExchangeFailure: Error {
    enum Cause: Equatable {
        /// No queue room, or no connection within `queue_timeout`.
        case queueFull, queueTimeout
        /// Connecting (and the TLS handshake, for TLS backends) failed or timed out.
        case connect(IOError)
        /// Writing the request to the backend failed or timed out.
        case send(IOError)
        /// The backend closed or reset before sending a byte of the response.
        case closedBeforeHead(IOError?)
        /// No complete response head within `upstream_header`.
        case headTimeout
        /// The backend sent something that is not an HTTP/1.1 response we can relay.
        case badResponse
        /// The response started but ended early (close, reset, timeout — the error, if any — or
        /// bad chunk framing).
        case truncated(IOError?)
        /// The client hung up.
        case clientGone
        /// The client was too slow: sending its body (`client_body`) or reading (`client_send`).
        case clientTimeout(ProxyStats.Timeout)
        /// The request body broke its framing or a limit.
        case badBody(HTTPError)
    }

    let cause: Cause
    /// Some byte of the request was handed to the backend's socket.
    var requestSent: Bool
    /// Some byte of the response was handed to the client: nothing else can be said to it.
    var responseStarted: Bool

    init(_ cause: Cause, requestSent: Bool, responseStarted: Bool = false) {
        self.cause = cause
        self.requestSent = requestSent
        self.responseStarted = responseStarted
    }

    var party: FailedParty {
        switch cause {
        case .queueFull, .queueTimeout: return .proxy
        case .connect, .send, .closedBeforeHead, .headTimeout, .badResponse, .truncated: return .upstream
        case .clientGone, .clientTimeout, .badBody: return .client
        }
    }

    /// Whether the request may go to a server again: the backend failed before answering, and it
    /// got none of the request or the method is idempotent (nginx's `ngx_http_upstream_test_next`).
    /// The caller adds what only it knows: the body is still whole in our buffer.
    func retrySafe(idempotent: Bool) -> Bool {
        guard party == .upstream, !responseStarted else { return false }
        switch cause {
        case .badResponse, .truncated: return false
        default: return idempotent || !requestSent
        }
    }

    /// The status the client is answered with (when nothing of a response was sent) and that the
    /// request is recorded with.
    var status: Int {
        switch cause {
        case .queueFull, .queueTimeout: return 503
        case .connect(let e): return e == .timedOut ? 504 : 502
        case .headTimeout: return 504
        case .send, .closedBeforeHead, .badResponse, .truncated: return 502
        case .clientGone: return 499
        case .clientTimeout: return 408
        case .badBody(let e): return e.status
        }
    }

    /// Passive health counts it against the server.
    var countsAgainstServer: Bool { party == .upstream }

    /// The timeout that fired, for `gatehouse_timeouts_total`.
    var timeout: ProxyStats.Timeout? {
        switch cause {
        case .queueTimeout: return .queue
        case .connect(.timedOut): return .upstreamConnect
        case .headTimeout: return .upstreamHeader
        case .send(.timedOut): return .upstreamSend
        case .clientTimeout(let t): return t
        case .truncated(.some(.timedOut)): return .upstreamRead
        default: return nil
        }
    }
}

extension ExchangeFailure {
    /// What the stale keep-alive race looks like (the server closed a pooled connection as it was
    /// reused): the request could not be sent, or the connection closed before any answer.
    var mayBeStaleRace: Bool {
        switch cause {
        case .send, .closedBeforeHead: return true
        default: return false
        }
    }

    /// No connection could be had (nothing was sent): the queue was full or timed out, the client
    /// left while waiting, or connecting failed.
    init(_ e: AcquireFailure) {
        switch e {
        case .cancelled: self.init(.clientGone, requestSent: false)
        case .queueFull: self.init(.queueFull, requestSent: false)
        case .queueTimeout: self.init(.queueTimeout, requestSent: false)
        case .connect(let io, _): self.init(.connect(io), requestSent: false)
        }
    }
}

extension ProxyStats {
    /// A request that failed for good, counted: the timeout that fired, a response cut short, or
    /// a client that left.
    func count(_ f: ExchangeFailure) {
        if let t = f.timeout { timedOut(t) }
        switch f.cause {
        case .truncated: truncatedResponsesTotal += 1
        case .clientGone: clientAbortsTotal += 1
        default: break
        }
    }
}
