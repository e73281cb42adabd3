import HTTP1
@testable import Proxy
import Testing

/// The client-certificate subject header, whose name only the Proxy layer knows: a request that
/// tries to hide it (a Connection option) or to pass a lookalike of it past the proxy is refused.
@Suite("Client subject header")
struct ClientSubjectTests {
    static let cases: [(String, Bool)] = [
        ("GET / HTTP/1.1\r\nHost: a\r\n\r\n", false),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-Client-Subject: CN=forged\r\n\r\n", false),  // dropped by the rewriter
        ("GET / HTTP/1.1\r\nHost: a\r\nConnection: x-client-subject\r\n\r\n", true),
        ("GET / HTTP/1.1\r\nHost: a\r\nConnection: close, X-CLIENT-SUBJECT\r\n\r\n", true),
        ("GET / HTTP/1.1\r\nHost: a\r\nConnection: x_client__subject\r\n\r\n", true),
        ("GET / HTTP/1.1\r\nHost: a\r\nX_Client_Subject: CN=forged\r\n\r\n", true),
        ("GET / HTTP/1.1\r\nHost: a\r\nx-client--subject-: CN=forged\r\n\r\n", true),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-Client-Subjects: 1\r\nConnection: x-client\r\n\r\n", false),
    ]

    @Test("Connection options and lookalike names of the subject header are refused", arguments: cases)
    func spoof(_ c: (String, Bool)) throws {
        let input = Array(c.0.utf8)
        let head = try Rewrite.parse(input, kind: .request).get()
        let name = Array("x-client-subject".utf8)
        let refused = input.withUnsafeBytes { b in name.withUnsafeBytes { HeadRewriter.spoofsClientSubject(b.baseAddress!, head, $0) } }
        #expect(refused == c.1, "\(c.0.debugDescription)")
    }
}
