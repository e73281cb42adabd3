import Foundation
import Glibc

extension Tool {
    /// slowhttptest, from Debian's `slowhttptest` package.
    static let slowhttptest = onPath("slowhttptest")
    static let slowhttptestMissing = "slowhttptest is not installed (Debian package slowhttptest; scripts/test installs it)"
}

/// One slowhttptest attack: the mode flag and its own knobs (see `man slowhttptest`).
struct SlowAttack {
    var name: String
    /// -H slowloris, -B slow body, -X slow read.
    var mode: String
    var path: String
    var extra: [String]

    /// Runs slowhttptest against 127.0.0.1:`port` with `connections` opened at `rate` per second
    /// for at most `seconds`; returns while it runs, so the caller can probe beside it.
    func start(port: UInt16, connections: Int, rate: Int, seconds: Int) throws -> RunningAttack {
        let dir = NSTemporaryDirectory() + "gatehouse-slow-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let stats = dir + "/" + name
        // -g -o: a CSV of connection states, one row a second (written when the tool ends).
        // -p 1: its own probe, whose verdict we do not use (ours is stricter), waits 1 s at most.
        let args = [mode, "-c", "\(connections)", "-r", "\(rate)", "-l", "\(seconds)", "-p", "1",
                    "-g", "-o", stats, "-u", "http://127.0.0.1:\(port)\(path)"] + extra
        let child = try Child("/usr/bin/env", ["slowhttptest"] + args)
        return RunningAttack(child: child, dir: dir, csv: stats + ".csv", seconds: seconds)
    }
}

/// A slowhttptest process in flight.
final class RunningAttack {
    let child: Child
    let dir: String
    let csv: String
    let seconds: Int
    private let started = Date()

    init(child: Child, dir: String, csv: String, seconds: Int) {
        self.child = child
        self.dir = dir
        self.csv = csv
        self.seconds = seconds
    }

    /// Waits for the tool to end (it stops at its time limit, or earlier once the server has
    /// closed every connection) and reads its CSV.
    func finish() throws -> AttackTimeline {
        guard child.waitExit(timeout: Double(seconds) + 30) != nil else {
            throw TestFailure("slowhttptest did not end within \(seconds + 30) s")
        }
        let ended = Date().timeIntervalSince(started)
        guard let text = try? String(contentsOfFile: csv, encoding: .utf8) else {
            throw TestFailure("slowhttptest wrote no CSV at \(csv)")
        }
        let exit = (try? child.waitForLine(containing: "Exit status", timeout: 3)) ?? "?"
        let plain = exit.replacingOccurrences(of: "\u{1B}\\[[0-9;]*m", with: "", options: .regularExpression)
        return try AttackTimeline(csv: text, exitStatus: plain, endedAfter: ended)
    }

    deinit { try? FileManager.default.removeItem(atPath: dir) }
}

/// slowhttptest's per-second CSV (`Seconds,Closed,Pending,Connected,Service Available`): how many
/// of the attack's connections the server had closed, were still connecting, or were connected,
/// at each second since the tool started. The second at which none is pending or connected any
/// more is when the server had closed the last attacker. The tool ends as soon as that happens
/// ("No open connections left"), often before writing the row that shows it, so then the time it
/// ended (measured here) stands for it: an upper bound, within the tool's one-second status tick.
struct AttackTimeline {
    struct Row {
        var second: Int
        var closed: Int
        var pending: Int
        var connected: Int
    }

    var rows: [Row]
    var exitStatus: String
    /// Seconds from starting the tool until it had exited.
    var endedAfter: Double

    init(csv: String, exitStatus: String, endedAfter: Double) throws {
        self.exitStatus = exitStatus
        self.endedAfter = endedAfter
        rows = csv.split(separator: "\n").dropFirst().compactMap { line in
            let f = line.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard f.count >= 4, let s = f[0], let c = f[1], let p = f[2], let n = f[3] else { return nil }
            return Row(second: s, closed: c, pending: p, connected: n)
        }
        guard !rows.isEmpty else { throw TestFailure("slowhttptest CSV has no rows: \(csv.prefix(200))") }
    }

    /// Attackers that got a connection at all: those connected plus those already closed, at
    /// the second where that sum peaked (a test where they never connected proves nothing).
    var established: Int { rows.map { $0.closed + $0.connected }.max() ?? 0 }

    /// True when the tool ended because the server had closed every connection.
    var endedWithNoneOpen: Bool { exitStatus.contains("No open connections left") }

    /// The second of the attack from which no attacker was connected or connecting; nil when
    /// some still were when the tool ended (at its time limit).
    var allClosedAt: Double? {
        if let last = rows.last, last.connected + last.pending == 0 {
            let open = rows.lastIndex { $0.connected + $0.pending > 0 }
            return Double(open.map { rows[$0 + 1].second } ?? rows[0].second)
        }
        return endedWithNoneOpen ? endedAfter : nil
    }

    var summary: String {
        let every5 = rows.filter { $0.second % 5 == 0 || $0.second == rows.last?.second }
        return every5.map { "\($0.second)s: connected \($0.connected), pending \($0.pending), closed \($0.closed)" }
            .joined(separator: "; ") + String(format: "; ended after %.1f s: ", endedAfter) + exitStatus.trimmingCharacters(in: .whitespaces)
    }
}

/// A normal request through the proxy once a second, each on its own connection and thread (so a
/// stuck probe does not delay the next), beside a sample of the proxy's resident memory.
final class Prober: @unchecked Sendable {
    struct Probe {
        var at: Double
        var status: Int?
        var seconds: Double
        var error: String?
    }

    private let port: UInt16
    private let pid: Int32
    private let path: String
    private let lock = NSLock()
    private let start = Date()
    private var stopped = false
    private var outstanding = 0
    private var _probes: [Probe] = []
    private var _peakRSSKiB = 0
    private var _peakKernelTCPKiB = 0
    private var _established: [(at: Double, count: Int)] = []

    init(port: UInt16, pid: Int32, path: String = "/probe") {
        self.port = port
        self.pid = pid
        self.path = path
        Thread { [self] in tick() }.start()
    }

    var probes: [Probe] { lock.withLock { _probes.sorted { $0.at < $1.at } } }
    var peakRSSKiB: Int { lock.withLock { _peakRSSKiB } }
    /// The most memory the kernel held for TCP sockets machine-wide meanwhile (/proc/net/sockstat):
    /// what a slow reader costs once the proxy has written into its socket.
    var peakKernelTCPKiB: Int { lock.withLock { _peakKernelTCPKiB } }

    /// The first second from which the proxy's side held no attacker connection (at most the one
    /// probe), after `atLeast` were open at once: the proxy's own view of when it closed them all.
    /// slowhttptest does not count a connection the proxy resets (a slow reader's) as closed.
    func allClosedAt(after atLeast: Int) -> Double? {
        lock.withLock {
            guard let peak = _established.firstIndex(where: { $0.count >= atLeast }) else { return nil }
            return _established[peak...].first { $0.count <= 1 }?.at
        }
    }

    /// Established TCP connections whose local port is `port` (/proc/net/tcp, state 01).
    static func established(port: UInt16) -> Int {
        // (procfs files report size 0: read to the end, not by the size.)
        guard let data = FileHandle(forReadingAtPath: "/proc/net/tcp")?.readDataToEndOfFile() else { return 0 }
        let text = String(decoding: data, as: UTF8.self)
        let suffix = ":" + String(format: "%04X", port)
        var n = 0
        for line in text.split(separator: "\n").dropFirst() {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            if f.count > 3, f[3] == "01", f[1].hasSuffix(suffix) { n += 1 }
        }
        return n
    }

    /// Stops probing and waits for probes in flight (each gives up after 10 s).
    func stop() {
        lock.withLock { stopped = true }
        let end = Date().addingTimeInterval(12)
        while lock.withLock({ outstanding > 0 }) && Date() < end { usleep(50_000) }
    }

    private func tick() {
        var next = 0.0
        while !lock.withLock({ stopped }) {
            let rss = Self.rssKiB(pid)
            let tcp = Self.kernelTCPKiB()
            let est = Self.established(port: port)
            let now = Date().timeIntervalSince(start)
            lock.withLock {
                _established.append((now, est))
                _peakRSSKiB = max(_peakRSSKiB, rss)
                _peakKernelTCPKiB = max(_peakKernelTCPKiB, tcp)
                outstanding += 1
            }
            let at = next
            Thread { [self] in
                let p = probe(at: at)
                lock.withLock {
                    _probes.append(p)
                    outstanding -= 1
                }
            }.start()
            next += 1
            let wait = next - Date().timeIntervalSince(start)
            if wait > 0 { usleep(UInt32(wait * 1_000_000)) }
        }
    }

    private func probe(at: Double) -> Probe {
        let t0 = Date()
        do {
            let c = try Conn(port: port, timeout: 10)
            try c.send("GET \(path) HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")
            let r = try c.readResponse()
            return Probe(at: at, status: r.status, seconds: Date().timeIntervalSince(t0))
        } catch {
            return Probe(at: at, status: nil, seconds: Date().timeIntervalSince(t0), error: "\(error)")
        }
    }

    /// VmRSS of `pid` from /proc, in KiB (0 when it is gone).
    static func rssKiB(_ pid: Int32) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? 0
        }
        return 0
    }

    /// The kernel's TCP socket memory ("TCP: ... mem PAGES" in /proc/net/sockstat), in KiB.
    static func kernelTCPKiB() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/net/sockstat", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("TCP:") }) else { return 0 }
        let f = line.split(separator: " ")
        guard let i = f.firstIndex(of: "mem"), i + 1 < f.count, let pages = Int(f[i + 1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE))) / 1024
    }
}
