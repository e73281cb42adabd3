import HTTP1

/// What a body framer made of a stream: how it ended, the payload it delivered and the input it used.
public struct BodyRun: Equatable {
    public enum End: Equatable {
        /// The body ended; the bytes after `consumed` belong to the next message.
        case complete
        /// Every byte was used and the body wants more.
        case needMore
        case error(status: Int)
    }

    public var end: End
    public var payload: [UInt8]
    public var consumed: Int

    /// Decodes `bytes` arriving in pieces ending at `cuts` with `next`, as the proxy relays a body
    /// it decodes. Each piece holds only the bytes not yet consumed, in an allocation of exactly
    /// that size. Traps on an event that points outside its input or makes no progress.
    public static func decode(_ framer: BodyFramer, _ bytes: UnsafeRawBufferPointer, cuts: [Int]) -> BodyRun {
        var f = framer
        var run = BodyRun(end: .needMore, payload: [], consumed: 0)
        for cut in cuts {
            pieces: while true {
                let step = Pieces.withExactCopy(UnsafeRawBufferPointer(rebasing: bytes[run.consumed...]), cut - run.consumed) { input -> (BodyEvent, [UInt8]) in
                    let e = f.next(input)
                    if case .data(let off, let count, let used) = e {
                        require(off >= 0 && count >= 0 && off + count <= used && used <= input.count, "data event \(e) outside its \(input.count) bytes")
                        return (e, Array(input[off..<(off + count)]))
                    }
                    return (e, [])
                }
                switch step.0 {
                case .data(_, _, let used):
                    require(used > 0, "data event that uses no input")
                    run.payload += step.1
                    run.consumed += used
                case .framing(let used):
                    require(used > 0 && run.consumed + used <= cut, "framing event using \(used) of \(cut - run.consumed) bytes")
                    run.consumed += used
                case .end(let used):
                    require(used >= 0 && run.consumed + used <= cut, "end event using \(used) of \(cut - run.consumed) bytes")
                    run.consumed += used
                    run.end = .complete
                    return run
                case .needMore:
                    require(run.consumed == cut, "needMore with \(cut - run.consumed) bytes left")
                    break pieces
                case .error(let e):
                    run.end = .error(status: e.status)
                    return run
                }
            }
        }
        return run
    }

    /// Consumes `bytes` in pieces with `scan`, as the proxy forwards a body raw. Returns how it ended
    /// and the bytes used; payload is not reported by `scan`.
    public static func scan(_ framer: BodyFramer, _ bytes: UnsafeRawBufferPointer, cuts: [Int]) -> BodyRun {
        var f = framer
        var run = BodyRun(end: .needMore, payload: [], consumed: 0)
        for cut in cuts {
            let r = Pieces.withExactCopy(UnsafeRawBufferPointer(rebasing: bytes[run.consumed...]), cut - run.consumed) { f.scan($0) }
            require(r.consumed >= 0 && run.consumed + r.consumed <= cut, "scan used \(r.consumed) of \(cut - run.consumed) bytes")
            run.consumed += r.consumed
            if let e = r.error { run.end = .error(status: e.status); return run }
            if r.done { run.end = .complete; return run }
            require(run.consumed == cut, "scan stopped at \(run.consumed) of \(cut) without ending")
        }
        return run
    }
}
