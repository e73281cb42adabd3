/// Parsing of durations ("250ms", "10s", "2m", "1h"; a bare number is seconds) and sizes ("16k",
/// "1m", "1g"; a bare number is bytes). Every multiplication is checked: a value that does not fit,
/// or is beyond the ceilings below, is an error the loader reports at its line, never a trap.
public enum Units {
    /// Why a value was refused.
    public enum Failure: Error, Equatable, Sendable {
        /// Not a number with a known unit.
        case invalid
        /// A number, but beyond the ceiling (or beyond what 64 bits hold).
        case tooLarge
    }

    /// The longest duration: one year. Deadlines are `now + duration` in UInt64 nanoseconds of a
    /// monotonic clock; a year keeps them centuries away from overflow, and no timeout wants more.
    public static let maxDuration: UInt64 = 8760 * 3_600_000_000_000
    /// The largest size: 1 TiB. Sizes are Ints added to byte counts; beyond this a limit means
    /// nothing (`max_body_bytes 0` is "no limit").
    public static let maxSize = 1 << 40

    /// Nanoseconds, or nil. See `parseDuration` for why.
    public static func duration(_ s: String) -> UInt64? { try? parseDuration(s) }

    /// Bytes, or nil. See `parseSize` for why.
    public static func size(_ s: String) -> Int? { try? parseSize(s) }

    public static func parseDuration(_ s: String) throws(Failure) -> UInt64 {
        // Longest suffix first: "ms" before "m" and "s".
        let table: [(String, UInt64)] = [("ms", 1_000_000), ("s", 1_000_000_000), ("m", 60_000_000_000), ("h", 3_600_000_000_000)]
        let (digits, unit) = table.first { s.hasSuffix($0.0) }.map { (s.dropLast($0.0.count), $0.1) } ?? (Substring(s), 1_000_000_000)
        return try scaled(digits, by: unit, max: maxDuration)
    }

    public static func parseSize(_ s: String) throws(Failure) -> Int {
        let lower = s.lowercased()
        let table: [(String, UInt64)] = [("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30)]
        let (digits, unit) = table.first { lower.hasSuffix($0.0) }.map { (lower.dropLast(), $0.1) } ?? (Substring(lower), 1)
        return Int(try scaled(digits, by: unit, max: UInt64(maxSize)))
    }

    /// `digits` (ASCII 0-9 only: no sign, no spaces) times `unit`, at most `max`.
    static func scaled(_ digits: Substring, by unit: UInt64, max: UInt64) throws(Failure) -> UInt64 {
        guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { throw .invalid }
        guard let n = UInt64(digits) else { throw .tooLarge }
        let (product, overflow) = n.multipliedReportingOverflow(by: unit)
        guard !overflow, product <= max else { throw .tooLarge }
        return product
    }
}
