import HTTP1

/// What a strict proxy makes of a byte stream: the verdict and how many whole messages it framed.
enum Verdict: String {
    case accept, reject, incomplete, upgrade
}

struct Outcome: Equatable {
    var verdict: Verdict
    var messages: Int
    var error: HTTPError?
}

/// Feeds `bytes` as a stream arriving in two pieces split at `split` (nil: in one piece), or as the
/// pieces ending at each offset of `arrivals`, to the request or response parser and body framer,
/// exactly as the proxy does.
func drive(_ bytes: [UInt8], kind: HeadParser.Kind, split: Int? = nil, arrivals: [Int]? = nil, requestMethod: Method = .get) -> Outcome {
    var parser = HeadParser(kind: kind)
    var framer: BodyFramer?
    var base = 0
    var messages = 0
    let arrivals = arrivals ?? split.map { [$0, bytes.count] } ?? [bytes.count]
    for avail in arrivals {
        while true {
            let slice = bytes[base..<avail].withUnsafeBytes { Array($0) }
            if framer == nil {
                if slice.isEmpty { break }
                let r = slice.withUnsafeBytes { parser.parse($0) }
                switch r {
                case .needMore:
                    break
                case .error(let e):
                    return Outcome(verdict: .reject, messages: messages, error: e)
                case .complete:
                    let head = parser.head
                    if kind == .response && head.status < 200 && head.status != 101 {
                        base += head.end
                        parser.reset()
                        continue
                    }
                    if head.upgrade && kind == .request { return Outcome(verdict: .upgrade, messages: messages, error: nil) }
                    base += head.end
                    framer = BodyFramer(kind == .request ? head.requestFraming : head.responseFraming(requestMethod: requestMethod))
                    continue
                }
                break
            } else {
                let r = slice.withUnsafeBytes { framer!.scan($0) }
                base += r.consumed
                if let e = r.error { return Outcome(verdict: .reject, messages: messages, error: e) }
                if r.done {
                    messages += 1
                    let keepAlive = parser.head.keepAlive
                    framer = nil
                    parser.reset()
                    if !keepAlive && base < bytes.count {
                        // A proxy closes after this message; what follows is never parsed.
                        return Outcome(verdict: .reject, messages: messages, error: nil)
                    }
                    continue
                }
                break
            }
        }
    }
    // Empty lines before a request-line are ignored (RFC 9112 §2.2), so CRLFs after the last message are fine.
    if framer == nil && messages > 0 && kind == .request && bytes[base...].allSatisfy({ $0 == 0x0D || $0 == 0x0A }) {
        return Outcome(verdict: .accept, messages: messages, error: nil)
    }
    if framer == nil && base == bytes.count && messages > 0 { return Outcome(verdict: .accept, messages: messages, error: nil) }
    if let f = framer, case .untilClose = f.framing { return Outcome(verdict: .accept, messages: messages + 1, error: nil) }
    return Outcome(verdict: .incomplete, messages: messages, error: nil)
}

/// Drives `bytes` whole and split at every byte boundary; returns the whole-message outcome and
/// the first split point whose outcome differs from it, if any.
func driveEverySplit(_ bytes: [UInt8], kind: HeadParser.Kind = .request, requestMethod: Method = .get) -> (Outcome, Int?) {
    let whole = drive(bytes, kind: kind, requestMethod: requestMethod)
    for s in 0...bytes.count {
        var o = drive(bytes, kind: kind, split: s, requestMethod: requestMethod)
        var w = whole
        o.error = nil
        w.error = nil
        if o != w { return (whole, s) }
    }
    return (whole, nil)
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

func hexBytes(_ hex: String) -> [UInt8] {
    var out: [UInt8] = []
    var it = hex.utf8.makeIterator()
    while let a = it.next(), let b = it.next() {
        out.append(UInt8(String(decoding: [a, b], as: UTF8.self), radix: 16)!)
    }
    return out
}

/// ../shared/corpus beside the project root.
let corpusRoot: String = {
    var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)  // Tests/HTTP1Tests/Harness.swift
    return parts.joined(separator: "/") + "/../shared/corpus"
}()
