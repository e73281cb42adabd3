import Foundation

/// A fresh error_log path (removed when released) and what was written to it.
final class LogFile {
    let path = NSTemporaryDirectory() + "gatehouse-error-\(UUID().uuidString).log"
    var text: String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
    var lines: [String] { text.split(separator: "\n").map(String.init) }
    func lines(containing s: String) -> [String] { lines.filter { $0.contains(s) } }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}
