import Config
import Glibc
import Logging
import Proxy
import Runtime

/// The supervisor's side of the access log: the file, opened for append and reopened on SIGUSR1
/// (logrotate), and the receiving end of a unix datagram socket pair whose sending end every
/// worker inherits. Each datagram is whole lines of one worker (see the worker's `AccessLog`), so
/// lines of different workers never interleave. When the socket is readable every datagram
/// waiting is read and written; a blocking write is fine here (the supervisor serves no
/// requests), and while it blocks the workers keep their lines in their rings.
final class AccessLogSink {
    /// The receiving end, polled beside the supervisor's signals.
    let fd: Int32
    /// The sending end, handed to every worker.
    let workerFD: Int32
    private let path: String
    private let file: LogTarget
    /// Several datagrams are gathered for one write.
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 * AccessLogSettings.datagramBytes, alignment: 16)

    init(settings: AccessLogSettings) throws(Supervisor.Failure) {
        path = settings.path
        do { file = try LogTarget(path: settings.path) } catch {
            throw Supervisor.Failure("access_log \(settings.path): \(error)")
        }
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw Supervisor.Failure("access_log: cannot make the workers' socket: \(IOError.errno(errno))")
        }
        fd = pair[0]
        workerFD = pair[1]
    }

    deinit { buffer.deallocate() }

    /// For `--check`: nil when `settings` is off or its file opens for append, else why not.
    static func check(_ settings: AccessLogSettings?) -> String? {
        guard let s = settings else { return nil }
        switch ErrorLogHandler.open(path: s.path) {
        case .success(let fd):
            close(fd)
            return nil
        case .failure(let e):
            return "access_log \(s.path): \(e)"
        }
    }

    /// Reads the datagrams waiting and writes them to the file, a few at a time; at most 1 MiB a
    /// call, so workers that outrun the disk cannot keep the supervisor from reaping, reloading or
    /// stopping (it is called again at its next poll).
    func drain() {
        var written = 0
        while written < 1 << 20 {
            var used = 0
            while buffer.count - used >= AccessLogSettings.datagramBytes {
                let n = recv(fd, buffer.baseAddress! + used, buffer.count - used, Int32(MSG_DONTWAIT))
                if n > 0 { used += n } else if n < 0 && errno == EINTR { continue } else { break }
            }
            if used == 0 { return }
            write(UnsafeRawBufferPointer(rebasing: buffer[0..<used]))
            written += used
        }
    }

    /// SIGUSR1: the file is opened again by its path (logrotate moved the old one away).
    func reopen(_ logger: Logger) {
        drain()  // what the workers sent before the signal belongs to the old file
        if let e = file.reopen() {
            logger.error("SIGUSR1: cannot reopen access_log \(path): \(e); still writing to the old file")
        } else {
            logger.notice("SIGUSR1: access_log reopened")
        }
    }

    private func write(_ bytes: UnsafeRawBufferPointer) {
        var off = 0
        while off < bytes.count {
            let n = Glibc.write(file.fd, bytes.baseAddress! + off, bytes.count - off)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }  // a full disk loses lines; the proxy goes on
            off += n
        }
    }
}
