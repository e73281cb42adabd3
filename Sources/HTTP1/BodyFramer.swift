/// How a message body is delimited (RFC 9112 §6.3).
public enum Framing: Equatable, Sendable {
    case none
    case length(UInt64)
    case chunked
    /// Response body that runs until the server closes.
    case untilClose
}

public extension MessageHead {
    /// Framing of a request body.
    var requestFraming: Framing {
        if chunked { return .chunked }
        if let n = contentLength, n > 0 { return .length(n) }
        return .none
    }

    /// Framing of a response body, given the request method (HEAD has none).
    func responseFraming(requestMethod: Method) -> Framing {
        if requestMethod == .head || status < 200 || status == 204 || status == 304 { return .none }
        if chunked { return .chunked }
        if otherTransferCoding { return .untilClose }
        if let n = contentLength { return n == 0 ? .none : .length(n) }
        return .untilClose
    }
}

/// One step of body decoding over an input span.
public enum BodyEvent: Equatable, Sendable {
    /// `count` payload bytes at `offset` in the input; `consumed` input bytes are used up through them.
    case data(offset: Int, count: Int, consumed: Int)
    /// `consumed` bytes of framing (chunk sizes, CRLFs, trailers) were used up.
    case framing(consumed: Int)
    /// The body ended after `consumed` more bytes.
    case end(consumed: Int)
    /// All input was used; feed more.
    case needMore
    case error(HTTPError)
}

/// Incremental body decoder: content-length, chunked (with extensions and trailers, strictly), or
/// until close. It never buffers; the caller forwards the raw bytes it consumed or the payload spans.
public struct BodyFramer: Sendable {
    private enum ChunkState: Sendable, Equatable {
        case size(digits: Int), sizeSpace, sizeLF, data, dataCR, dataLF
        case extStart, extName, extNameSpace, extValueStart, extValue, extQuoted, extQuotedEscape, extAfterValue
        case trailerStart, trailer, trailerLF, finalLF
    }

    public private(set) var framing: Framing
    private var remaining: UInt64 = 0
    private var chunkSize: UInt64 = 0
    private var state: ChunkState = .size(digits: 0)
    private var trailerBytes = 0
    private var lineHasColon = false
    public private(set) var isComplete = false
    public var maxTrailerBytes = 8 * 1024

    public init(_ framing: Framing) {
        self.framing = framing
        switch framing {
        case .none: isComplete = true
        case .length(let n): remaining = n; isComplete = n == 0
        default: break
        }
    }

    /// Peer closed: fine for close-delimited bodies, truncation otherwise.
    public mutating func eof() -> Bool {
        if case .untilClose = framing { isComplete = true; return true }
        return isComplete
    }

    public mutating func next(_ input: UnsafeRawBufferPointer) -> BodyEvent {
        if isComplete { return .end(consumed: 0) }
        if input.isEmpty { return .needMore }
        switch framing {
        case .none:
            return .end(consumed: 0)
        case .untilClose:
            return .data(offset: 0, count: input.count, consumed: input.count)
        case .length:
            let n = Int(min(UInt64(input.count), remaining))
            remaining -= UInt64(n)
            if remaining == 0 { isComplete = true }
            return .data(offset: 0, count: n, consumed: n)
        case .chunked:
            return nextChunked(input)
        }
    }

    /// Consumes as much of `input` as belongs to this body, for raw forwarding; `done` when it ended.
    public mutating func scan(_ input: UnsafeRawBufferPointer) -> (consumed: Int, done: Bool, error: HTTPError?) {
        var used = 0
        while true {
            switch next(UnsafeRawBufferPointer(rebasing: input[used...])) {
            case .data(_, _, let c), .framing(let c): used += c
            case .end(let c): return (used + c, true, nil)
            case .needMore: return (used, false, nil)
            case .error(let e): return (used, false, e)
            }
            if isComplete { return (used, true, nil) }
        }
    }

    /// chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] ) (RFC 9112 §7.1.1).
    private mutating func chunkExtension(_ b: UInt8) -> Bool {
        let sp = b == 0x20 || b == 0x09
        let tok = ByteClass.isToken(b)
        switch state {
        case .extStart:
            if tok { state = .extName } else if !sp { return false }
        case .extName, .extNameSpace:
            if b == UInt8(ascii: "=") { state = .extValueStart }
            else if b == UInt8(ascii: ";") { state = .extStart }
            else if b == 0x0D { state = .sizeLF }
            else if sp { state = .extNameSpace }
            else if !(tok && state == .extName) { return false }
        case .extValueStart:
            if b == UInt8(ascii: "\"") { state = .extQuoted } else if tok { state = .extValue } else if !sp { return false }
        case .extValue, .extAfterValue:
            if b == UInt8(ascii: ";") { state = .extStart }
            else if b == 0x0D { state = .sizeLF }
            else if sp { state = .extAfterValue }
            else if !(tok && state == .extValue) { return false }
        case .extQuoted:
            if b == UInt8(ascii: "\"") { state = .extAfterValue }
            else if b == UInt8(ascii: "\\") { state = .extQuotedEscape }
            else if !(b == 0x09 || (b >= 0x20 && b != 0x7F)) { return false }
        case .extQuotedEscape:
            if !(b == 0x09 || (b >= 0x20 && b != 0x7F)) { return false }
            state = .extQuoted
        default:
            return false
        }
        return true
    }

    private mutating func nextChunked(_ input: UnsafeRawBufferPointer) -> BodyEvent {
        var i = 0
        let n = input.count
        while i < n {
            let b = input[i]
            switch state {
            case .size(let digits):
                if let v = ByteClass.hexValue(b) {
                    guard digits < 15 else { return .error(.badRequest("chunk size too large")) }
                    chunkSize = chunkSize << 4 | UInt64(v)
                    state = .size(digits: digits + 1)
                } else if digits == 0 {
                    return .error(.badRequest("bad chunk size"))
                } else if b == 0x0D {
                    state = .sizeLF
                } else if b == UInt8(ascii: ";") {
                    state = .extStart
                } else if b == 0x20 || b == 0x09 {
                    state = .sizeSpace
                } else {
                    return .error(.badRequest("bad chunk size"))
                }
            case .sizeSpace:
                if b == UInt8(ascii: ";") { state = .extStart }
                else if b != 0x20 && b != 0x09 { return .error(.badRequest("bad chunk size")) }
            case .extStart, .extName, .extNameSpace, .extValueStart, .extValue, .extQuoted, .extQuotedEscape, .extAfterValue:
                guard chunkExtension(b) else { return .error(.badRequest("bad chunk extension")) }
            case .sizeLF:
                guard b == 0x0A else { return .error(.badRequest("bad chunk line ending")) }
                if chunkSize == 0 {
                    state = .trailerStart
                } else {
                    remaining = chunkSize
                    state = .data
                }
                chunkSize = 0
                if case .data = state {
                    let consumed = i + 1
                    return .framing(consumed: consumed)
                }
            case .data:
                if i > 0 { return .framing(consumed: i) }
                let take = Int(min(UInt64(n), remaining))
                remaining -= UInt64(take)
                if remaining == 0 { state = .dataCR }
                return .data(offset: 0, count: take, consumed: take)
            case .dataCR:
                guard b == 0x0D else { return .error(.badRequest("chunk data too long")) }
                state = .dataLF
            case .dataLF:
                guard b == 0x0A else { return .error(.badRequest("bad chunk line ending")) }
                state = .size(digits: 0)
            case .trailerStart:
                if b == 0x0D { state = .finalLF }
                else if ByteClass.isToken(b) { state = .trailer; lineHasColon = false }
                else { return .error(.badRequest("bad trailer")) }
            case .trailer:
                trailerBytes += 1
                if trailerBytes > maxTrailerBytes { return .error(.badRequest("trailers too large")) }
                if b == 0x0D {
                    guard lineHasColon else { return .error(.badRequest("bad trailer")) }
                    state = .trailerLF
                } else if b == UInt8(ascii: ":") {
                    lineHasColon = true
                } else if !lineHasColon && !ByteClass.isToken(b) {
                    return .error(.badRequest("bad trailer"))
                } else if lineHasColon && !ByteClass.isFieldValue(b) {
                    return .error(.badRequest("bad trailer"))
                }
            case .trailerLF:
                guard b == 0x0A else { return .error(.badRequest("bad trailer line ending")) }
                state = .trailerStart
            case .finalLF:
                guard b == 0x0A else { return .error(.badRequest("bad final chunk")) }
                isComplete = true
                return .end(consumed: i + 1)
            }
            i += 1
        }
        return .framing(consumed: n)
    }
}
