import Glibc

/// The entry point of a fuzz target in a plain build (without `-sanitize=fuzzer`): runs the target's
/// check on each file named on the command line (or each file in a named directory), so a crash
/// input or a whole corpus replays with `swift run <Target> <path>...`. Each input runs in a child
/// process, so one that traps is reported and the others still run; the exit status is 1 if any failed.
public enum Replay {
    public static func main(_ check: (UnsafeRawBufferPointer) -> Void) {
        var ran = 0
        var failed: [String] = []
        for path in CommandLine.arguments.dropFirst() {
            for file in files(path) {
                let bytes = read(file)
                fflush(nil)
                let pid = fork()
                if pid == 0 {
                    bytes.withUnsafeBytes { check($0) }
                    exit(0)
                }
                var status: Int32 = 0
                waitpid(pid, &status, 0)
                ran += 1
                if status != 0 {
                    failed.append(file)
                    print("FAILED \(file) (\(status & 0x7F != 0 ? "signal \(status & 0x7F)" : "exit \(status >> 8)"))")
                }
            }
        }
        print("\(CommandLine.arguments[0]): \(ran - failed.count) of \(ran) input(s) passed")
        exit(failed.isEmpty ? 0 : 1)
    }

    /// `path` itself, or the regular files directly inside it when it is a directory.
    static func files(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [path] }
        defer { closedir(dir) }
        var out: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name.hasPrefix(".") { continue }
            out.append(path + "/" + name)
        }
        return out.sorted()
    }

    static func read(_ path: String) -> [UInt8] {
        guard let f = fopen(path, "rb") else { fatalError("cannot open \(path)") }
        defer { fclose(f) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
            if n == 0 { break }
            out += chunk[0..<n]
        }
        return out
    }
}
