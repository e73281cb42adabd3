import Config
import FuzzSupport

/// Fuzz target: the config loader. Any text gives a configuration or an error naming a line of the
/// text, never a crash. The loader reads the whole text, so instead of a split it must agree with
/// itself on the text behind a space and with a newline appended (no change at all), and on the
/// text moved one line down (an error one line later; a configuration records lines, so only the
/// verdict is compared).
func check(_ bytes: UnsafeRawBufferPointer) {
    let text = String(decoding: bytes, as: UTF8.self)
    let lines = text.unicodeScalars.filter { $0 == "\n" }.count + 1
    let r = load(text)
    if case .failure(let e) = r {
        require(e.line >= 1 && e.line <= lines, "error at line \(e.line) of a \(lines)-line text: \(e)")
        require(e.file == "fuzz.conf", "error names file \(e.file)")
    }
    for (name, variant) in [("behind a space", " " + text), ("with a newline appended", text + "\n")] {
        let v = load(variant)
        require(v == r, "\(name), \(r) became \(v); text \"\(quoted(bytes))\"")
    }
    let down = load("\n" + text)
    switch (r, down) {
    case (.success, .success): break
    case (.failure(let a), .failure(let b)):
        // Errors about the whole file (no server block, ...) name line 1 wherever it starts.
        let moved = b.line == a.line + 1 || (a.line == 1 && b.line == 1)
        require(moved && b.message == shifted(a.message) && b.directive == a.directive, "one line down, \(a) became \(b)")
    default: require(false, "one line down, \(r) became \(down); text \"\(quoted(bytes))\"")
    }
}

/// `message` with every "fuzz.conf:N" it names (another line, e.g. a clash) one line further down.
func shifted(_ message: String) -> String {
    let parts = message.split(separator: "fuzz.conf:", omittingEmptySubsequences: false)
    return parts.dropFirst().reduce(String(parts[0])) { acc, part in
        let digits = part.prefix { $0.isNumber }
        guard let n = Int(digits) else { return acc + "fuzz.conf:" + part }
        return acc + "fuzz.conf:\(n + 1)" + part.dropFirst(digits.count)
    }
}

func load(_ text: String) -> Result<Configuration, ConfigError> {
    Result { () throws(ConfigError) in try ConfigLoader.load(text: text, file: "fuzz.conf") }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    check(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

#if !FUZZING
@main enum Main { static func main() { Replay.main(check) } }
#endif
