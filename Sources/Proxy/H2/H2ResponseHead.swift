import CNghttp2
import HTTP1

/// An HTTP/1.1 response head as HTTP/2 fields (RFC 9113 §8.3.2): `:status`, then every field but
/// the connection-specific ones (hop-by-hop, those Connection names, Transfer-Encoding; the body
/// goes decoded in DATA frames), names lowercased. Built in one flat buffer, which the nghttp2
/// name-value list points into while the response is submitted.
struct H2ResponseHead {
    private var bytes: [UInt8] = []
    /// (name start, name length, value start, value length) in `bytes`.
    private var spans: [(Int, Int, Int, Int)] = []
    private var nv: [nghttp2_nv] = []

    init() {}

    /// The fields of `head` (whose bytes are at `p`), in place of the last ones (storage kept).
    mutating func build(_ head: borrowing MessageHead, _ p: UnsafeRawPointer) {
        bytes.removeAll(keepingCapacity: true)
        spans.removeAll(keepingCapacity: true)
        let status = head.status
        let digits: [UInt8] = [UInt8(48 + status / 100 % 10), UInt8(48 + status / 10 % 10), UInt8(48 + status % 10)]
        add(Self.statusName, digits)
        for f in head.headers {
            if f.kind.isHopByHop || f.namedByConnection || f.dropped || f.kind == .transferEncoding { continue }
            if f.kind == .contentLength && (status < 200 || status == 204) { continue }
            let nameStart = bytes.count
            for i in 0..<f.name.count {
                let b = p.load(fromByteOffset: f.name.start + i, as: UInt8.self)
                bytes.append(b >= 65 && b <= 90 ? b | 0x20 : b)
            }
            let valueStart = bytes.count
            bytes.append(contentsOf: UnsafeRawBufferPointer(start: p + f.value.start, count: f.value.count))
            spans.append((nameStart, f.name.count, valueStart, f.value.count))
        }
    }

    /// Only `:status` (the proxy's own answers).
    mutating func build(status: Int) {
        var head = MessageHead()
        head.status = status
        build(head, UnsafeRawPointer(bitPattern: 1)!)
    }

    private static let statusName = Array(":status".utf8)

    private mutating func add(_ name: [UInt8], _ value: [UInt8]) {
        let n = bytes.count
        bytes.append(contentsOf: name)
        bytes.append(contentsOf: value)
        spans.append((n, name.count, n + name.count, value.count))
    }

    /// Calls `body` with the nghttp2 name-value list (valid only inside it; nghttp2 copies it).
    mutating func withFields<R>(_ body: (UnsafeMutablePointer<nghttp2_nv>, Int) -> R) -> R {
        nv.removeAll(keepingCapacity: true)
        let spans = spans
        return bytes.withUnsafeMutableBufferPointer { b in
            let base = b.baseAddress!
            for s in spans {
                nv.append(nghttp2_nv(name: base + s.0, value: base + s.2, namelen: s.1, valuelen: s.3, flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue)))
            }
            return nv.withUnsafeMutableBufferPointer { body($0.baseAddress!, $0.count) }
        }
    }
}
