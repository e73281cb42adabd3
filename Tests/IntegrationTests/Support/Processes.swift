import Foundation
import Glibc

/// Where the built executables are: beside the test binary.
let binDir: String = {
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    return URL(fileURLWithPath: exe).deletingLastPathComponent().path
}()

/// The release build of the executables, when the test command built it (`scripts/test` sets
/// GATEHOUSE_RELEASE_BIN): what users run, for the tests that judge availability under attack
/// within a deadline (a debug build is several times slower at moving bytes).
let releaseBinDir: String? = {
    guard let d = ProcessInfo.processInfo.environment["GATEHOUSE_RELEASE_BIN"], !d.isEmpty,
          FileManager.default.isExecutableFile(atPath: d + "/gatehouse"),
          FileManager.default.isExecutableFile(atPath: d + "/gatehouse-backend") else { return nil }
    return d
}()

/// A child process whose stdout we read line by line; killed when released.
final class Child: @unchecked Sendable {
    let process = Process()
    private let out = Pipe()
    private var lines: [String] = []
    private var partial = ""
    private let lock = NSLock()
    var pid: Int32 { process.processIdentifier }

    /// `shell` runs first in bash (e.g. "ulimit -n 64;") and then execs the program.
    init(_ path: String, _ args: [String], shell: String? = nil) throws {
        _ = openFileLimit  // before the child inherits it
        if let shell {
            process.executableURL = URL(fileURLWithPath: "/bin/bash")
            process.arguments = ["-c", shell + " exec \"$0\" \"$@\"", path] + args
        } else {
            process.executableURL = URL(fileURLWithPath: path)
            process.arguments = args
        }
        process.standardOutput = out
        process.standardError = FileHandle.standardError
        out.fileHandleForReading.readabilityHandler = { [weak self] h in
            let d = h.availableData
            guard let self, !d.isEmpty else { return }
            self.lock.lock()
            self.partial += String(decoding: d, as: UTF8.self)
            while let nl = self.partial.firstIndex(of: "\n") {
                self.lines.append(String(self.partial[..<nl]))
                self.partial = String(self.partial[self.partial.index(after: nl)...])
            }
            self.lock.unlock()
        }
        try process.run()
    }

    /// Waits for a stdout line containing `marker` and returns it.
    func waitForLine(containing marker: String, timeout: Double = 30) throws -> String {
        var end = Date().addingTimeInterval(timeout)
        var exited = false
        while Date() < end {
            lock.lock()
            let hit = lines.first { $0.contains(marker) }
            lock.unlock()
            if let hit { return hit }
            // A child that has exited may still have lines in the pipe that the handler reads
            // late on a busy machine (it is not told of the pipe's end on Linux): a second more.
            if !exited && !process.isRunning {
                exited = true
                end = min(end, Date().addingTimeInterval(1))
            }
            usleep(10_000)
        }
        throw TestFailure("no line with \"\(marker)\" from \(process.executableURL?.lastPathComponent ?? "?") \(process.arguments ?? [])")
    }

    func signal(_ sig: Int32) { kill(pid, sig) }

    /// Waits for exit; returns the status, or nil on timeout.
    func waitExit(timeout: Double = 30) -> Int32? {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            if !process.isRunning { return process.terminationStatus }
            usleep(10_000)
        }
        return nil
    }

    deinit {
        if process.isRunning {
            kill(pid, SIGKILL)
            process.waitUntilExit()
        }
        out.fileHandleForReading.readabilityHandler = nil
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// The port at the end of "... listening on 127.0.0.1:PORT".
func boundPort(_ line: String) -> UInt16 {
    UInt16(line.split(separator: ":").last!.trimmingCharacters(in: .whitespaces))!
}

/// A demo backend on a free port.
final class DemoBackend {
    let child: Child
    let port: UInt16

    init(_ extra: [String] = [], bin: String = binDir) throws {
        child = try Child(bin + "/gatehouse-backend", ["--listen", "127.0.0.1:0"] + extra)
        port = boundPort(try child.waitForLine(containing: "listening on"))
    }

    /// The backend's own counters (/__stats).
    func stats() throws -> [String: Int] {
        let r = try HTTP.request(port: port, "GET /__stats HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
        return try JSONSerialization.jsonObject(with: Data(r.body)) as! [String: Int]
    }
}

/// Gatehouse started from a config file (`listen 127.0.0.1:0` and `metrics 127.0.0.1:0` pick free ports).
final class GatehouseProcess {
    let child: Child
    let port: UInt16
    let metricsPort: UInt16
    let configPath: String

    init(config: String, shell: String? = nil, bin: String = binDir) throws {
        configPath = NSTemporaryDirectory() + "gatehouse-\(UUID().uuidString).conf"
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
        child = try Child(bin + "/gatehouse", ["-c", configPath], shell: shell)
        port = boundPort(try child.waitForLine(containing: "gatehouse: proxy"))
        metricsPort = boundPort(try child.waitForLine(containing: "metrics listening on"))
    }

    /// A config in front of `backends`, with extra directives for the backend block and the top level.
    static func config(backends: [UInt16], backendExtra: String = "", top: String = "") -> String {
        """
        log_level warning;
        metrics 127.0.0.1:0;
        \(top)
        backend b {
        \(backends.map { "    server 127.0.0.1:\($0);" }.joined(separator: "\n"))
        \(backendExtra)
        }
        server {
            listen 127.0.0.1:0;
            proxy_pass b;
        }
        """
    }

    func metrics() throws -> String {
        let r = try HTTP.request(port: metricsPort, "GET /metrics HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n")
        return String(decoding: r.body, as: UTF8.self)
    }

    /// The value of the first sample line that starts with `prefix` (name and labels).
    func metric(_ prefix: String) throws -> Double {
        for line in try metrics().split(separator: "\n") where line.hasPrefix(prefix) {
            return Double(line.split(separator: " ").last!)!
        }
        throw TestFailure("no metric \(prefix)")
    }

    /// Descriptors the process has open, counted from outside (/proc/PID/fd), not by its metrics.
    func openFDs() throws -> Double {
        Double(try FileManager.default.contentsOfDirectory(atPath: "/proc/\(child.pid)/fd").count)
    }

    deinit { try? FileManager.default.removeItem(atPath: configPath) }
}

/// Runs a command and returns its exit status and output.
@discardableResult
func sh(_ command: String) throws -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/bash")
    p.arguments = ["-c", command]
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}
