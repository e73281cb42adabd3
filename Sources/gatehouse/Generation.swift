import CLinux
import Config
import Glibc
import Runtime

/// The workers started for one config: the first at start, one more for each reload. A new
/// generation serves beside the old until every one of its workers is ready; then the old drains.
final class Generation {
    let number: Int
    let configuration: Configuration
    /// The config text the supervisor read and checked, handed to every worker of this generation
    /// (a memfd), so a worker restarted later runs the same config even if the file changed since.
    let configFD: Int32?
    let plan: ListenerTable.Plan
    var workers: [Worker] = []
    /// Told to drain: its workers are not started again when they exit.
    var draining = false

    init(number: Int, configuration: Configuration, configFD: Int32?, plan: ListenerTable.Plan) {
        self.number = number
        self.configuration = configuration
        self.configFD = configFD
        self.plan = plan
    }

    var running: [Worker] { workers.filter { $0.pid > 0 } }
    var allReady: Bool { workers.allSatisfy(\.ready) }

    /// Closes what only this generation used (its config file), once every worker is gone.
    func release() { if let fd = configFD { close(fd) } }

    /// The config text as an inherited descriptor.
    static func configFD(text: String) -> Int32? {
        let bytes = Array(text.utf8)
        let fd = gh_memfd("gatehouse-config", UInt64(bytes.count))
        guard fd >= 0 else { return nil }
        let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        guard n == bytes.count else {
            close(fd)
            return nil
        }
        return fd
    }
}

/// One worker process of a generation: its index there, its slot in the shared metrics, and its
/// restart state.
final class Worker {
    let index: Int
    let metricsSlot: Int
    var pid: Int32 = 0
    var startedAt: UInt64 = 0
    var backoff: UInt64 = 100_000_000
    var restartAt: UInt64 = 0
    /// The read end of the pipe on which the worker says it is ready (one byte), until it has.
    var readyFD: Int32 = -1
    var ready = false

    init(index: Int, metricsSlot: Int) {
        self.index = index
        self.metricsSlot = metricsSlot
    }

    /// A worker started again after a crash is not waited for: its generation already serves.
    func markStarted(pid: Int32, readyFD: Int32) {
        self.pid = pid
        startedAt = monotonicNanos()
        if ready {
            close(readyFD)
        } else {
            self.readyFD = readyFD
        }
    }

    /// Reads the worker's word on its pipe: true once it said it is ready; false at EOF.
    func takeReady() -> Bool {
        var b: UInt8 = 0
        let n = read(readyFD, &b, 1)
        if n < 0 && (errno == EAGAIN || errno == EINTR) { return false }
        close(readyFD)
        readyFD = -1
        if n == 1 { ready = true }
        return n == 1
    }

    /// Its next start after it ended: at once after a run of 10 s or more, else after a delay
    /// that doubles up to 5 s (a worker that keeps crashing).
    /// `failedToStart`: it could not even be spawned (no pipe, no process), which says nothing of
    /// how long it would run: always back off then, or a lasting failure (EMFILE, EAGAIN) would be
    /// retried every loop turn.
    func planRestart(failedToStart: Bool = false) {
        let ran = monotonicNanos() - startedAt
        if ran >= 10_000_000_000 && !failedToStart {
            backoff = 100_000_000
            restartAt = monotonicNanos()
        } else {
            restartAt = monotonicNanos() + backoff
            backoff = min(backoff * 2, 5_000_000_000)
        }
    }
}
