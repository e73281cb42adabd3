import CNghttp2
import HTTP1

/// An HTTP/1.1 response head as HTTP/2 fields (RFC 9113 §8.3.2): `:status`, then every field but
/// the connection-specific ones (hop-by-hop, those Connection names, Transfer-Encoding; the body
/// goes decoded in DATA frames), names lowercased. Built in one flat buffer, which the nghttp2
/// name-value list points into while the response is submitted.
struct H2ResponseHead {
    private(set) var bytes: [UInt8] = []
    /// (name start, name length, value start, value length) in `bytes`.
    private(set) var spans: [(Int, Int, Int, Int)] = []

    init(_ head: borrowing MessageHead, _ p: UnsafeRawPointer) {
        let status = head.status
        add(name: Array(":status".utf8), value: [UInt8(48 + status / 100), UInt8(48 + status / 10 % 10), UInt8(48 + status % 10)])
        for f in head.headers {
            if f.kind.isHopByHop || f.namedByConnection || f.dropped || f.kind == .transferEncoding { continue }
            if f.kind == .contentLength && (status < 200 || status == 204) { continue }
            let nameStart = bytes.count
            for i in 0..<f.name.count {
                let b = p.load(fromByteOffset: f.name.start + i, as: UInt8.self)
                bytes.append(b >= 65 && b <= 90 ? b | 0x20 : b)
            }
            let valueStart = bytes.count
            bytes += UnsafeRawBufferPointer(start: p + f.value.start, count: f.value.count)
            spans.append((nameStart, f.name.count, valueStart, f.value.count))
        }
    }

    private mutating func add(name: [UInt8], value: [UInt8]) {
        let n = bytes.count
        bytes += name
        bytes += value
        spans.append((n, name.count, n + name.count, value.count))
    }

    /// Calls `body` with the nghttp2 name-value list (valid only inside it).
    func withFields<R>(_ body: (UnsafeMutablePointer<nghttp2_nv>, Int) -> R) -> R {
        bytes.withUnsafeBufferPointer { b in
            let base = UnsafeMutablePointer(mutating: b.baseAddress!)
            var nv = spans.map { s in
                nghttp2_nv(name: base + s.0, value: base + s.2, namelen: s.1, valuelen: s.3, flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
            }
            return nv.withUnsafeMutableBufferPointer { body($0.baseAddress!, $0.count) }
        }
    }
}
