/// The forms of a request-target (RFC 9112 §3.2) the proxy accepts, and the authority of the
/// absolute form, which the proxy forwards as `Host` (§3.2.2).
enum RequestTarget {
    enum Form: Equatable {
        /// origin-form, asterisk-form for OPTIONS, or CONNECT's target (refused later, with 501).
        case other
        /// `http://authority/path?query`: the path part may be empty or start with '?'.
        case absolute(authority: ByteRange, path: ByteRange)
        case invalid(HTTPError)
    }

    static func form(_ buf: UnsafeRawBufferPointer, method: Method, target: ByteRange) -> Form {
        let first = buf[target.start]
        switch method {
        case .connect: return .other
        case .options where first == UInt8(ascii: "*") && target.count == 1: return .other
        default:
            if first == UInt8(ascii: "/") { return .other }
            var scheme = 0
            if target.count >= 7 && buf.equalsLowercase(ByteRange(start: target.start, count: 7), "http://") { scheme = 7 }
            if target.count >= 8 && buf.equalsLowercase(ByteRange(start: target.start, count: 8), "https://") { scheme = 8 }
            guard scheme > 0 else { return .invalid(.badRequest("bad request-target")) }
            var e = target.start + scheme
            while e < target.end && buf[e] != UInt8(ascii: "/") && buf[e] != UInt8(ascii: "?") { e += 1 }
            let authority = ByteRange(start: target.start + scheme, count: e - target.start - scheme)
            guard HostValue.isValid(buf, authority) else { return .invalid(.badRequest("bad authority in request-target")) }
            return .absolute(authority: authority, path: ByteRange(start: e, count: target.end - e))
        }
    }
}

/// A Host value or an authority: host [ ":" port ], never empty, no userinfo, no whitespace or
/// delimiters a backend could split on.
enum HostValue {
    static func isValid(_ buf: UnsafeRawBufferPointer, _ r: ByteRange) -> Bool {
        guard r.count > 0 else { return false }
        for k in r.start..<r.end {
            switch buf[k] {
            case 0...0x20, 0x7F...0xFF: return false
            case UInt8(ascii: "/"), UInt8(ascii: ","), UInt8(ascii: "@"), UInt8(ascii: "?"), UInt8(ascii: "#"), UInt8(ascii: "\\"): return false
            default: continue
            }
        }
        return true
    }
}
