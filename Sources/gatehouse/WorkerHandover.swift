import CLinux
import Config
import Glibc
import Proxy
import Runtime

/// What a worker was handed: read from the environment the supervisor set.
enum WorkerHandover {
    /// Each handed-over socket must be bound where the worker's reading of the config says (it
    /// reads the text the supervisor checked, so only a name that resolves elsewhere now can
    /// differ); nil when it is, else what differs.
    static func mismatch(_ c: Configuration, _ h: ProxyServer.Inherited) -> String? {
        let listens = c.servers.flatMap(\.listen)
        guard listens.count == h.listeners.count else {
            return "the config has \(listens.count) listen addresses, the supervisor bound \(h.listeners.count)"
        }
        for (l, fd) in zip(listens, h.listeners) {
            guard let bound = TCP.localAddress(ofFD: fd), let want = SocketAddress.resolve(host: l.address.host, port: bound.port),
                  l.address.port == 0 || l.address.port == bound.port, want.description == bound.description else {
                return "listen \(l.address) is not where the supervisor bound it (\(TCP.localAddress(ofFD: fd)?.description ?? "?"))"
            }
        }
        return nil
    }

    private static func value(_ key: String) -> String? {
        ProcessEnvironment.current.first { $0.hasPrefix(key + "=") }.map { String($0.dropFirst(key.count + 1)) }
    }

    /// The config text the supervisor read and checked for this worker's generation, if handed over.
    static func configText() -> String? {
        guard let fd = value("GATEHOUSE_WORKER_CONFIG_FD").flatMap({ Int32($0) }) else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return nil }
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
        let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        return n == bytes.count ? String(decoding: bytes, as: UTF8.self) : nil
    }

    /// Tells the supervisor this worker serves (once its loop is about to run): it then lets the
    /// previous generation drain.
    static func sayReady() {
        guard let fd = value("GATEHOUSE_WORKER_READY_FD").flatMap({ Int32($0) }) else { return }
        var b: UInt8 = 1
        _ = write(fd, &b, 1)
        close(fd)
    }

    static func inherited() -> ProxyServer.Inherited? {
        guard let list = value("GATEHOUSE_WORKER_LISTEN_FDS") else { return nil }
        let fds = list.split(separator: ",").compactMap { Int32($0) }
        let share = value("GATEHOUSE_WORKER_SHARE").map { $0.split(separator: ",").compactMap { Int($0) } }
        return ProxyServer.Inherited(listeners: fds, metrics: value("GATEHOUSE_WORKER_METRICS_FD").flatMap { Int32($0) },
                                     share: share.flatMap { $0.count == 3 ? (Int32($0[0]), $0[1], $0[2]) : nil },
                                     accessLog: value("GATEHOUSE_WORKER_ACCESS_LOG_FD").flatMap { Int32($0) })
    }

    /// Ties this worker's life to its supervisor's: false when the supervisor is already gone.
    static func followSupervisor() -> Bool {
        guard let text = ProcessEnvironment.current.first(where: { $0.hasPrefix("GATEHOUSE_WORKER_SUPERVISOR=") }),
              let pid = Int32(text.dropFirst("GATEHOUSE_WORKER_SUPERVISOR=".count)) else { return false }
        return gh_die_with_parent(pid) == 0
    }
}

enum ProcessEnvironment {
    static var current: [String] {
        var out: [String] = []
        var p = environ
        while let e = p.pointee {
            out.append(String(cString: e))
            p += 1
        }
        return out
    }
}

/// `body` with `strings` as a NULL-terminated C array.
func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    var ptrs: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    ptrs.append(nil)
    defer { for p in ptrs { free(p) } }
    return ptrs.withUnsafeBufferPointer { body($0.baseAddress!) }
}

/// CPUs this process may run on (its affinity mask), for `workers auto`.
func usableCPUs() -> Int { Int(gh_usable_cpus()) }
