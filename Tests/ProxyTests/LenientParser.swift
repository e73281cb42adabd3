/// A deliberately lenient HTTP/1.1 reader, the kind of backend or client behind or in front of the
/// proxy that the differential tests guard: bare LF ends a line, obs-fold continues a value,
/// whitespace is tolerated everywhere, a field name is read with '_' as '-' (runs collapsed, ends
/// trimmed, any case), Content-Length is its first digits, and any Transfer-Encoding that contains
/// "chunked" is chunked.
struct LenientParser {
    struct Message: Equatable {
        var method = ""
        var target = ""
        var status = 0
        var fields: [(name: String, value: String)] = []
        var rawBody: [UInt8] = []
        var payload: [UInt8] = []

        static func == (a: Message, b: Message) -> Bool {
            a.method == b.method && a.target == b.target && a.status == b.status && a.rawBody == b.rawBody && a.payload == b.payload
        }

        func values(_ name: String) -> [String] { fields.filter { $0.name == name }.map(\.value) }
    }

    let bytes: [UInt8]
    var pos = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// The next line without its LF and a CR before it; nil when no LF is left.
    mutating func line() -> [UInt8]? {
        guard let lf = bytes[pos...].firstIndex(of: 0x0A) else { return nil }
        var end = lf
        if end > pos && bytes[end - 1] == 0x0D { end -= 1 }
        let l = Array(bytes[pos..<end])
        pos = lf + 1
        return l
    }

    static func trim(_ b: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var s = b.startIndex, e = b.endIndex
        while s < e && (b[s] == 0x20 || b[s] == 0x09 || b[s] == 0x0D) { s += 1 }
        while e > s && (b[e - 1] == 0x20 || b[e - 1] == 0x09 || b[e - 1] == 0x0D) { e -= 1 }
        return b[s..<e]
    }

    static func string(_ b: ArraySlice<UInt8>) -> String { String(decoding: b, as: UTF8.self) }

    static func normalise(_ name: ArraySlice<UInt8>) -> String {
        var out: [UInt8] = []
        var sep = false
        for var c in name {
            if c >= 0x41 && c <= 0x5A { c |= 0x20 }
            if c == UInt8(ascii: "_") || c == UInt8(ascii: "-") { sep = !out.isEmpty; continue }
            if sep { out.append(UInt8(ascii: "-")); sep = false }
            out.append(c)
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Words of a start line, split on runs of whitespace.
    static func words(_ l: [UInt8]) -> [String] {
        l.split(whereSeparator: { $0 == 0x20 || $0 == 0x09 }).map { string($0) }
    }

    /// Header lines up to the empty line; nil when the head does not end.
    mutating func fields() -> [(name: String, value: String)]? {
        var out: [(name: String, value: String)] = []
        while true {
            guard let l = line() else { return nil }
            if Self.trim(l[...]).isEmpty { return out }
            if (l.first == 0x20 || l.first == 0x09), !out.isEmpty {
                out[out.count - 1].value += " " + Self.string(Self.trim(l[...]))
                continue
            }
            guard let colon = l.firstIndex(of: UInt8(ascii: ":")) else { continue }
            out.append((Self.normalise(Self.trim(l[..<colon])), Self.string(Self.trim(l[(colon + 1)...]))))
        }
    }

    enum Framing { case none, length(Int), chunked, close }

    static func framing(_ fields: [(name: String, value: String)]) -> Framing {
        if fields.contains(where: { $0.name == "transfer-encoding" && $0.value.lowercased().contains("chunked") }) { return .chunked }
        if let cl = fields.first(where: { $0.name == "content-length" }) {
            let digits = cl.value.drop(while: { $0 == " " || $0 == "\t" }).prefix(while: { $0.isASCII && $0.isNumber })
            return .length(Int(digits.prefix(15)) ?? 0)
        }
        return .none
    }

    /// Reads a body; nil when the bytes end first.
    mutating func body(_ f: Framing) -> (raw: [UInt8], payload: [UInt8])? {
        let start = pos
        switch f {
        case .none:
            return ([], [])
        case .close:
            pos = bytes.count
            return (Array(bytes[start...]), Array(bytes[start...]))
        case .length(let n):
            guard bytes.count - pos >= n else { return nil }
            pos += n
            return (Array(bytes[start..<pos]), Array(bytes[start..<pos]))
        case .chunked:
            var payload: [UInt8] = []
            while true {
                guard let l = line() else { return nil }
                let hex = Self.trim(l[...]).prefix(while: { $0 < 0x80 && Character(UnicodeScalar($0)).isHexDigit })
                let size = Int(Self.string(hex.prefix(15)), radix: 16) ?? 0
                if size == 0 {
                    while true {
                        guard let t = line() else { return nil }
                        if Self.trim(t[...]).isEmpty { return (Array(bytes[start..<pos]), payload) }
                    }
                }
                guard bytes.count - pos >= size else { return nil }
                payload += bytes[pos..<(pos + size)]
                pos += size
                guard line() != nil else { return nil }
            }
        }
    }

    /// Every whole request in the bytes, and whether they were used up exactly.
    mutating func requests() -> (messages: [Message], exact: Bool) {
        var out: [Message] = []
        while pos < bytes.count {
            let mark = pos
            while pos < bytes.count && (bytes[pos] == 0x0D || bytes[pos] == 0x0A) { pos += 1 }
            guard let first = line(), let fields = fields() else { pos = mark; break }
            let w = Self.words(first)
            var m = Message(method: w.first ?? "", target: w.count > 1 ? w[1] : "", fields: fields)
            guard let b = body(Self.framing(fields)) else { pos = mark; break }
            (m.rawBody, m.payload) = b
            out.append(m)
        }
        return (out, pos == bytes.count)
    }

    /// Every whole final response (1xx skipped) to a request with `method`; whether all bytes were used.
    mutating func responses(method: String) -> (messages: [Message], exact: Bool) {
        var out: [Message] = []
        while pos < bytes.count {
            let mark = pos
            guard let first = line(), let fields = fields() else { pos = mark; break }
            let w = Self.words(first)
            let status = w.count > 1 ? Int(w[1]) ?? 0 : 0
            if status >= 100 && status < 200 { continue }
            var f = Self.framing(fields)
            if method == "HEAD" || status == 204 || status == 304 { f = .none } else if case .none = f { f = .close }
            guard let b = body(f) else { pos = mark; break }
            out.append(Message(status: status, fields: fields, rawBody: b.raw, payload: b.payload))
        }
        return (out, pos == bytes.count)
    }
}
