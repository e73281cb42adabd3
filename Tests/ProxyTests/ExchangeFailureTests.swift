import Glibc
@testable import Proxy
import Testing

/// Who failed, whether a retry is safe and what the client is told, for every way an exchange fails.
@Suite("Exchange failures")
struct ExchangeFailureTests {
    typealias F = ExchangeFailure

    @Test("retry only when the backend failed before answering and it got none of the request, or the method is idempotent")
    func retrySafety() {
        let cases: [(F, idempotent: Bool, safe: Bool)] = [
            (F(.connect(.errno(ECONNREFUSED)), requestSent: false), false, true),
            (F(.send(.errno(EPIPE)), requestSent: false), false, true),
            (F(.send(.errno(EPIPE)), requestSent: true), false, false),
            (F(.send(.errno(EPIPE)), requestSent: true), true, true),
            (F(.closedBeforeHead(nil), requestSent: true), false, false),
            (F(.closedBeforeHead(.errno(ECONNRESET)), requestSent: true), true, true),
            (F(.headTimeout, requestSent: true), true, true),
            (F(.badResponse, requestSent: true), true, false),
            (F(.truncated(nil), requestSent: true, responseStarted: true), true, false),
            (F(.clientGone, requestSent: false), true, false),
            (F(.clientTimeout(.clientBody), requestSent: true), true, false),
            (F(.badBody(.bodyTooLarge), requestSent: true), true, false),
            (F(.queueFull, requestSent: false), true, false),
        ]
        for (f, idempotent, safe) in cases {
            #expect(f.retrySafe(idempotent: idempotent) == safe, "\(f.cause) idempotent=\(idempotent)")
        }
    }

    @Test("who failed, the status recorded or answered, and what counts against the server")
    func blameAndStatus() {
        let cases: [(F.Cause, FailedParty, Int, ProxyStats.Timeout?)] = [
            (.queueFull, .proxy, 503, nil),
            (.queueTimeout, .proxy, 503, .queue),
            (.connect(.timedOut), .upstream, 504, .upstreamConnect),
            (.connect(.errno(ECONNREFUSED)), .upstream, 502, nil),
            (.send(.timedOut), .upstream, 502, .upstreamSend),
            (.closedBeforeHead(nil), .upstream, 502, nil),
            (.headTimeout, .upstream, 504, .upstreamHeader),
            (.badResponse, .upstream, 502, nil),
            (.truncated(.timedOut), .upstream, 502, .upstreamRead),
            (.truncated(nil), .upstream, 502, nil),
            (.clientGone, .client, 499, nil),
            (.clientTimeout(.clientBody), .client, 408, .clientBody),
            (.clientTimeout(.clientSend), .client, 408, .clientSend),
            (.badBody(.badRequest("bad chunk")), .client, 400, nil),
            (.badBody(.bodyTooLarge), .client, 413, nil),
        ]
        for (cause, party, status, timeout) in cases {
            let f = F(cause, requestSent: true)
            #expect(f.party == party && f.status == status && f.timeout == timeout, "\(cause)")
            #expect(f.countsAgainstServer == (party == .upstream), "\(cause)")
        }
    }
}
