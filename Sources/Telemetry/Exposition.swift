/// One sample line of the Prometheus text format: `name{label="value",...} value [timestamp]`.
public struct ExpositionSample: Sendable {
    public let name: String
    /// In the order written; a family's series are few enough that a scan beats a dictionary.
    public let labels: [(name: String, value: String)]
    public let value: Double

    public init(name: String, labels: [(name: String, value: String)] = [], value: Double) {
        self.name = name
        self.labels = labels
        self.value = value
    }

    public func label(_ name: String) -> String? { labels.first { $0.name == name }?.value }
}

/// Reads exposition text back into samples, so a view built on it (the status page) shows exactly
/// what a scraper of /metrics sees, rather than a second set of figures that could drift from it.
///
/// Comments (`# HELP`, `# TYPE`) and blank lines are passed over; a line that does not parse is
/// skipped, not fatal: a view of the rest beats no view.
public enum Exposition {
    public static func parse(_ text: [UInt8]) -> [ExpositionSample] {
        var samples: [ExpositionSample] = []
        samples.reserveCapacity(text.count / 48)
        var start = 0
        while start < text.count {
            let end = text[start...].firstIndex(of: UInt8(ascii: "\n")) ?? text.count
            if end > start && text[start] != UInt8(ascii: "#"), let s = sample(text[start..<end]) { samples.append(s) }
            start = end + 1
        }
        return samples
    }

    /// One line, without its newline.
    static func sample(_ line: ArraySlice<UInt8>) -> ExpositionSample? {
        var i = line.startIndex
        while i < line.endIndex && line[i] != UInt8(ascii: "{") && line[i] != UInt8(ascii: " ") { i += 1 }
        guard i > line.startIndex, i < line.endIndex else { return nil }
        let name = String(decoding: line[line.startIndex..<i], as: UTF8.self)
        var labels: [(name: String, value: String)] = []
        if line[i] == UInt8(ascii: "{") {
            guard let (parsed, after) = labelSet(line, from: i + 1) else { return nil }
            labels = parsed
            i = after
        }
        while i < line.endIndex && line[i] == UInt8(ascii: " ") { i += 1 }
        var end = i
        while end < line.endIndex && line[end] != UInt8(ascii: " ") { end += 1 }
        guard let value = Double(String(decoding: line[i..<end], as: UTF8.self)) else { return nil }
        return ExpositionSample(name: name, labels: labels, value: value)
    }

    /// `a="x",b="y"}` from just after the brace: the pairs and the index after the closing brace.
    static func labelSet(_ line: ArraySlice<UInt8>, from: Int) -> ([(name: String, value: String)], Int)? {
        var labels: [(name: String, value: String)] = []
        var i = from
        while i < line.endIndex {
            if line[i] == UInt8(ascii: "}") { return (labels, i + 1) }
            if line[i] == UInt8(ascii: ",") || line[i] == UInt8(ascii: " ") {
                i += 1
                continue
            }
            guard let eq = line[i...].firstIndex(of: UInt8(ascii: "=")), eq + 1 < line.endIndex,
                  line[eq + 1] == UInt8(ascii: "\""),
                  let (value, after) = quoted(line, from: eq + 2) else { return nil }
            labels.append((String(decoding: line[i..<eq], as: UTF8.self), value))
            i = after
        }
        return nil
    }

    /// A label value from just after its opening quote, unescaping `\\`, `\"` and `\n`: the value
    /// and the index after the closing quote.
    static func quoted(_ line: ArraySlice<UInt8>, from: Int) -> (String, Int)? {
        var bytes: [UInt8] = []
        var i = from
        while i < line.endIndex {
            let c = line[i]
            if c == UInt8(ascii: "\"") { return (String(decoding: bytes, as: UTF8.self), i + 1) }
            if c == UInt8(ascii: "\\") && i + 1 < line.endIndex {
                i += 1
                bytes.append(line[i] == UInt8(ascii: "n") ? UInt8(ascii: "\n") : line[i])
            } else {
                bytes.append(c)
            }
            i += 1
        }
        return nil
    }
}
