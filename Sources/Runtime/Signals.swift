import CLinux
import Glibc

/// SIGTERM/SIGINT/SIGHUP delivered through a signalfd on the loop; SIGPIPE ignored.
public final class SignalWatcher: ParkedHandler {
    private let socket: Socket
    private let onSignal: (Int32) -> Void

    /// Blocks the signals and starts watching. Call before any other thread could exist.
    public init?(onSignal: @escaping (Int32) -> Void) {
        let fd = gh_signalfd_open()
        guard fd >= 0, let s = Socket(fd: fd) else { return nil }
        socket = s
        self.onSignal = onSignal
        s.park(self, until: 0)
    }

    public func parkedReadable(_ socket: Socket) {
        var info = signalfd_siginfo()
        while true {
            let n = withUnsafeMutableBytes(of: &info) { Glibc.read(socket.fd, $0.baseAddress, $0.count) }
            if n != MemoryLayout<signalfd_siginfo>.size { break }
            onSignal(Int32(info.ssi_signo))
        }
    }

    public func parkedExpired(_ socket: Socket) {}
}

/// Raises the soft open-file limit to the hard limit; returns the new soft limit.
@discardableResult
public func raiseOpenFileLimit() -> UInt64 {
    var rl = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl) == 0 else { return 0 }
    if rl.rlim_cur < rl.rlim_max {
        rl.rlim_cur = rl.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl)
    }
    _ = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl)
    return UInt64(rl.rlim_cur)
}

/// A one-shot sleep on the loop's timer heap (never `Task.sleep`, which uses another executor).
final class Sleeper: TimerNode {
    var continuation: UnsafeContinuation<Void, Never>?
    override func timerFired() {
        let c = continuation
        continuation = nil
        c?.resume()
    }
}

/// Suspends the current task until `deadline` (monotonic ns) on the loop's own timers.
@LoopActor
public func sleep(until deadline: UInt64) async {
    let s = Sleeper()
    await withUnsafeContinuation { (c: UnsafeContinuation<Void, Never>) in
        s.continuation = c
        EventLoop.shared.timers.schedule(s, at: max(deadline, 1))
    }
}
