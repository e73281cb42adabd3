import Glibc

/// The wall-clock time as access-log lines write it, in UTC. The date and time of day are
/// formatted once a second (gmtime_r and the digits), not once a line: a line copies the cached
/// text and, in JSON, adds the milliseconds.
final class LogClock {
    private var second = Int.min
    private let text = UnsafeMutableRawBufferPointer.allocate(byteCount: 26, alignment: 8)
    private let iso = UnsafeMutableRawBufferPointer.allocate(byteCount: 19, alignment: 8)
    /// The milliseconds of the last `now()`.
    private(set) var millis = 0

    deinit {
        text.deallocate()
        iso.deallocate()
    }

    /// Reads the clock (a vDSO call, no syscall) and brings the cached text up to its second.
    func now() {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        set(seconds: Int(ts.tv_sec), millis: Int(ts.tv_nsec / 1_000_000))
    }

    /// Sets the time outright (tests).
    func set(seconds: Int, millis: Int) {
        self.millis = millis
        if seconds != second { format(seconds) }
    }

    /// `02/Dec/2026:18:37:49 +0000`, as nginx's `$time_local` (in UTC).
    var common: UnsafeRawBufferPointer { UnsafeRawBufferPointer(text) }
    /// `2026-12-02T18:37:49`, ISO 8601 without the fraction and the zone.
    var isoSeconds: UnsafeRawBufferPointer { UnsafeRawBufferPointer(iso) }

    private func format(_ seconds: Int) {
        second = seconds
        var t = time_t(seconds)
        var tm = Glibc.tm()
        gmtime_r(&t, &tm)
        let year = Int(tm.tm_year) + 1900, month = Int(tm.tm_mon), day = Int(tm.tm_mday)
        let hh = Int(tm.tm_hour), mm = Int(tm.tm_min), ss = Int(tm.tm_sec)
        var w = Cursor(text)
        w.two(day); w.put("/"); w.put(Self.months[month]); w.put("/"); w.four(year)
        w.put(":"); w.two(hh); w.put(":"); w.two(mm); w.put(":"); w.two(ss); w.put(" +0000")
        w = Cursor(iso)
        w.four(year); w.put("-"); w.two(month + 1); w.put("-"); w.two(day)
        w.put("T"); w.two(hh); w.put(":"); w.two(mm); w.put(":"); w.two(ss)
    }

    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// Writes digits and text into one of the cached buffers (once a second: Strings are fine).
    private struct Cursor {
        let buffer: UnsafeMutableRawBufferPointer
        var at = 0
        init(_ b: UnsafeMutableRawBufferPointer) { buffer = b }
        mutating func put(_ s: String) { for b in s.utf8 { buffer[at] = b; at += 1 } }
        mutating func two(_ v: Int) { put(v < 10 ? "0\(v)" : "\(v % 100)") }
        mutating func four(_ v: Int) { let v = min(max(v, 0), 9999); put(String(repeating: "0", count: max(0, 4 - "\(v)".count)) + "\(v)") }
    }
}
