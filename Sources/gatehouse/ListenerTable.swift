import Config
import Glibc
import Proxy
import Runtime

/// The listening sockets a supervisor holds, by address as the config writes it: one per worker
/// slot for each proxy address (SO_REUSEPORT), one for the metrics address. A reload keeps the
/// sockets of every address still in the config (so nothing queued on them is lost: the new
/// generation accepts from the very sockets the old one did), binds the new ones, and closes those
/// whose address left once the new generation serves.
struct ListenerTable {
    let workers: Int
    private(set) var proxy: [String: [Int32]] = [:]
    private(set) var metrics: [String: Int32] = [:]

    init(workers: Int) { self.workers = workers }

    /// What one config gets: its sockets in config order, which of them were bound for it, and
    /// the addresses bound before that it no longer has.
    struct Plan {
        var perSlot: [[Int32]]
        var metricsFD: Int32?
        var bound: [(kind: String, address: SocketAddress)] = []
        /// Sockets bound for this plan, by address.
        var newFDs: [String: [Int32]] = [:]
        var newMetrics: [String: Int32] = [:]
        /// Addresses held before that this config does not have.
        var gone: [String] = []
        var goneMetrics: [String] = []
    }

    /// Binds what `c` asks for and is not bound yet (nothing changes here until `commit`).
    func plan(_ c: Configuration) throws -> Plan {
        var p = Plan(perSlot: Array(repeating: [], count: workers))
        var seen: [String: Int] = [:]
        do {
            for s in c.servers {
                for l in s.listen {
                    let key = Self.key(l.address, &seen)
                    let fds = try proxy[key] ?? bind(l)
                    if proxy[key] == nil { p.newFDs[key] = fds }
                    for slot in 0..<workers { p.perSlot[slot].append(fds[slot]) }
                    if let a = TCP.localAddress(ofFD: fds[0]) { p.bound.append((s.tls == nil ? "proxy" : "proxy (tls)", a)) }
                }
            }
            if let m = c.metrics {
                let key = "\(m)"
                let fd = try metrics[key] ?? bindMetrics(m)
                if metrics[key] == nil { p.newMetrics[key] = fd }
                p.metricsFD = fd
                if let a = TCP.localAddress(ofFD: fd) { p.bound.append(("metrics", a)) }
            }
        } catch {
            abandon(p)
            throw error
        }
        var kept = Set<String>()
        for (k, n) in seen { for i in 1...n { kept.insert("\(k)#\(i)") } }
        p.gone = proxy.keys.filter { !kept.contains($0) }
        p.goneMetrics = metrics.keys.filter { $0 != c.metrics.map { "\($0)" } }
        return p
    }

    /// The plan's config runs: its new sockets are kept, those of addresses it dropped closed.
    mutating func commit(_ p: Plan) {
        for (k, fds) in p.newFDs { proxy[k] = fds }
        for (k, fd) in p.newMetrics { metrics[k] = fd }
        for k in p.gone { proxy.removeValue(forKey: k)?.forEach { close($0) } }
        for k in p.goneMetrics { metrics.removeValue(forKey: k).map { _ = close($0) } }
    }

    /// The plan's config will not run: the sockets bound for it are closed.
    func abandon(_ p: Plan) {
        for fds in p.newFDs.values { for fd in fds { close(fd) } }
        for fd in p.newMetrics.values { close(fd) }
    }

    /// Stopping: every socket closed, so new connections are refused at once instead of queueing
    /// where no one will accept them (the workers close their copies as they drain).
    mutating func closeAll() {
        for fd in proxy.values.flatMap({ $0 }) + Array(metrics.values) { close(fd) }
        proxy = [:]
        metrics = [:]
    }

    /// Every socket held, for numbering a spawned worker's descriptors above them all.
    var allFDs: [Int32] { proxy.values.flatMap { $0 } + Array(metrics.values) }

    /// The address as written, and which occurrence of it (two `listen` lines may repeat one).
    private static func key(_ a: HostPort, _ seen: inout [String: Int]) -> String {
        let k = "\(a)"
        seen[k, default: 0] += 1
        return "\(k)#\(seen[k]!)"
    }

    /// One socket per slot (SO_REUSEPORT; a port 0 becomes the port the first got). Unless the
    /// listen says `reuseport`, a plain bind tries first, so this instance cannot join another's
    /// port.
    private func bind(_ l: ListenAddress) throws -> [Int32] {
        guard var addr = SocketAddress.resolve(host: l.address.host, port: l.address.port) else {
            throw Supervisor.Failure("listen \(l.address): cannot resolve")
        }
        if !l.reusePort {
            do { close(try TCP.bindListener(on: addr, backlog: 1)) } catch {
                throw Supervisor.Failure("cannot listen on \(l.address): \(ProxyServer.describe(error, reusePort: false))")
            }
        }
        var fds: [Int32] = []
        for slot in 0..<workers {
            do { fds.append(try TCP.bindListener(on: addr, reusePort: true)) } catch {
                for fd in fds { close(fd) }
                throw Supervisor.Failure("cannot listen on \(l.address): \(ProxyServer.describe(error, reusePort: true))")
            }
            if slot == 0, let actual = TCP.localAddress(ofFD: fds[0]) { addr = actual }
        }
        return fds
    }

    private func bindMetrics(_ m: HostPort) throws -> Int32 {
        guard let addr = SocketAddress.resolve(host: m.host, port: m.port) else { throw Supervisor.Failure("metrics \(m): cannot resolve") }
        do { return try TCP.bindListener(on: addr, backlog: 128) } catch {
            throw Supervisor.Failure("cannot listen on \(m) (metrics): \(ProxyServer.describe(error, reusePort: nil))")
        }
    }
}
