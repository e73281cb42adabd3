import ArgumentParser
import Config
import Glibc
import Runtime

/// `pid_file PATH`: where the running gatehouse (the supervisor, or the one process) writes its
/// pid, so `gatehouse -s reload` finds it as `nginx -s reload` does.
struct PidFile {
    let path: String

    /// Writes this process's pid to `path`; nil when no pid file is configured.
    init?(_ path: String?) throws {
        guard let path else { return nil }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Supervisor.Failure("pid_file \(path): \(IOError.errno(errno))") }
        defer { close(fd) }
        let line = Array("\(getpid())\n".utf8)
        guard write(fd, line, line.count) == line.count else { throw Supervisor.Failure("pid_file \(path): \(IOError.errno(errno))") }
        self.path = path
    }

    /// Removed at exit, unless another process has written its own pid there since.
    func remove() {
        if Self.read(path) == getpid() { unlink(path) }
    }

    static func read(_ path: String) -> Int32? {
        guard let text = Gatehouse.readFile(path) else { return nil }
        return Int32(text.split(whereSeparator: { $0 == "\n" || $0 == " " }).first ?? "")
    }

    static let signals: [String: Int32] = ["reload": SIGHUP, "reopen": SIGUSR1, "stop": SIGTERM, "quit": SIGQUIT]

    /// `-s NAME` (or `gatehouse NAME`, said as `label`): the signal to the pid in the config's pid_file.
    static func send(_ name: String, label: String, configuration: Configuration, file: String) throws {
        guard let sig = signals[name] else {
            throw ValidationError("\(label): expected one of \(signals.keys.sorted().joined(separator: ", "))")
        }
        guard let path = configuration.pidFile else {
            throw ValidationError("\(label): \(file) has no pid_file, so the running gatehouse cannot be found")
        }
        guard let pid = read(path), pid > 0 else {
            throw ValidationError("\(label): no pid in \(path) (is gatehouse running?)")
        }
        guard kill(pid, sig) == 0 else {
            throw ValidationError("\(label): cannot signal pid \(pid) from \(path): \(IOError.errno(errno))")
        }
    }
}
