/// One direction of a tunnel as a value: from the bytes it holds and what its ends reported, the
/// next thing to do. The owner performs it and reports back, so the order (write what is held
/// before reading more, pass the source's end on only once everything before it went) is tested
/// without sockets.
public struct TunnelPipe: Sendable, Equatable {
    public enum Step: Equatable, Sendable {
        /// Write the held bytes to the destination.
        case write
        /// Read from the source (nothing is held).
        case read
        /// The source ended and everything it sent went on: end the destination's direction
        /// (a FIN, or TLS close_notify), half-closing the tunnel.
        case shutDestination
        /// Nothing to do until the source has bytes or the destination has room.
        case wait
        /// This direction is over.
        case done
    }

    /// Bytes read from the source and not yet written.
    public private(set) var held = 0
    public private(set) var sourceEnded = false
    public private(set) var destinationShut = false
    /// Bytes written to the destination, in all.
    public private(set) var moved = 0

    public init(held: Int = 0) { self.held = held }

    public func next(sourceReadable: Bool) -> Step {
        if held > 0 { return .write }
        if sourceEnded { return destinationShut ? .done : .shutDestination }
        return sourceReadable ? .read : .wait
    }

    /// The source gave `n` bytes; 0 is its end.
    public mutating func read(_ n: Int) {
        if n == 0 { sourceEnded = true } else { held += n }
    }

    public mutating func wrote(_ n: Int) {
        precondition(n <= held)
        held -= n
        moved += n
    }

    public mutating func shut() { destinationShut = true }

    public var isDone: Bool { sourceEnded && held == 0 && destinationShut }
}
