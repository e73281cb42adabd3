import CLinux
import Glibc

/// Facts about this process read from /proc and the allocator, for the metrics endpoint.
public enum ProcessStats {
    /// Resident set size in bytes (/proc/self/statm).
    public static func residentBytes() -> Int {
        guard let text = readSmallFile("/proc/self/statm") else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// Threads of this process (the entries of /proc/self/task).
    public static func threadCount() -> Int { countEntries("/proc/self/task") }

    /// Open file descriptors (the entries of /proc/self/fd).
    public static func openFDs() -> Int { max(0, countEntries("/proc/self/fd") - 1) }

    public static func maxFDs() -> Int {
        var rl = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl)
        return Int(rl.rlim_cur)
    }

    /// Heap bytes in use and free bytes malloc holds, from one mallinfo2: it walks the
    /// allocator's free lists (a fraction of a millisecond on a big heap), so ask once.
    public static func heap() -> (inUse: Int, free: Int) {
        var inUse: UInt64 = 0, free: UInt64 = 0
        gh_heap_stats(&inUse, &free)
        return (Int(inUse), Int(free))
    }

    /// Returns free heap pages to the kernel.
    public static func trimHeap() { _ = gh_heap_trim() }

    /// CPU seconds used by this process (user + system).
    public static func cpuSeconds() -> Double {
        var ru = rusage()
        getrusage(RUSAGE_SELF.rawValue, &ru)
        return Double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + Double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6
    }

    private static let nameOffset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!

    static func countEntries(_ path: String) -> Int {
        guard let dir = opendir(path) else { return 0 }
        defer { closedir(dir) }
        var n = 0
        while let e = readdir(dir) {
            // Only the name's first byte: `e.pointee` would copy a whole dirent, and readdir's
            // entries are only as long as their names (AddressSanitizer caught the overread).
            let first = UnsafeRawPointer(e).load(fromByteOffset: Self.nameOffset, as: UInt8.self)
            if first != UInt8(ascii: ".") { n += 1 }
        }
        return n
    }

    public static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 4096)
        let n = read(fd, &buf, buf.count)
        guard n > 0 else { return nil }
        return String(decoding: buf[0..<n], as: UTF8.self)
    }
}
