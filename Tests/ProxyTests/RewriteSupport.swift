import HTTP1
@testable import Proxy
import Runtime

/// Renders what the proxy forwards for a head: parse, rewrite into a gather list, gather the bytes.
enum Rewrite {
    static let peer = Array("10.0.0.1".utf8)
    static let hostLine = Array("Host: backend:80\r\n".utf8)

    /// The parsed head of `bytes`, or the parser's error.
    static func parse(_ bytes: [UInt8], kind: HeadParser.Kind) -> Result<MessageHead, HTTPError> {
        var p = HeadParser(kind: kind)
        switch bytes.withUnsafeBytes({ p.parse($0) }) {
        case .complete: return .success(p.head)
        case .error(let e): return .failure(e)
        case .needMore: return .failure(.badRequest("incomplete"))
        }
    }

    static func gather(_ iov: IOVecList) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: iov.totalBytes)
        let n = out.withUnsafeMutableBytes { iov.gather(into: $0) }
        return Array(out[0..<n])
    }

    /// The request head forwarded to a backend for `head` parsed from `bytes`.
    static func request(_ bytes: [UInt8], _ head: MessageHead, tls: Bool = false, subjectName: [UInt8]? = nil, subjectLine: [UInt8]? = nil,
                        requestIDLine: [UInt8]? = nil) -> [UInt8] {
        let iov = IOVecList()
        bytes.withUnsafeBytes { b in
            peer.withUnsafeBytes { peerBytes in
                hostLine.withUnsafeBytes { host in
                    (subjectName ?? []).withUnsafeBytes { name in
                        (subjectLine ?? []).withUnsafeBytes { line in
                            (requestIDLine ?? []).withUnsafeBytes { idLine in
                                var facts = HeadRewriter.ClientFacts(tls: tls)
                                if subjectName != nil { facts.subjectName = name }
                                if subjectLine != nil { facts.subjectLine = line }
                                if requestIDLine != nil { facts.requestIDLine = idLine }
                                HeadRewriter.request(iov, b.baseAddress!, head, peer: peerBytes, hostLine: host, client: facts)
                            }
                        }
                    }
                }
            }
        }
        return gather(iov)
    }

    /// The response head forwarded to a client.
    static func response(_ bytes: [UInt8], _ head: MessageHead, close: Bool, keepAlive10: Bool = false, dechunk: Bool = false, switching: Bool = false) -> [UInt8] {
        let iov = IOVecList()
        bytes.withUnsafeBytes { b in
            HeadRewriter.response(iov, b.baseAddress!, head, close: close, keepAlive10: keepAlive10, dechunk: dechunk, switching: switching)
        }
        return gather(iov)
    }
}
