import Foundation
import Glibc

/// A page as headless Chromium left it: the DOM its script built, serialized, and what it wrote to
/// its console (uncaught errors included).
struct RenderedPage {
    let html: String
    let console: [String]

    /// Loads `url` in headless Chromium (Debian's `chromium`) and lets `virtualMillis` of virtual
    /// time pass before the DOM is taken. Virtual time runs timers at once but stands still while
    /// a fetch is in flight, so a page that polls each second polls once per virtual second
    /// however loaded the machine is, and the run takes a second or two of real time.
    static func load(_ url: String, virtualMillis: Int = 6000) throws -> RenderedPage {
        let profile = NSTemporaryDirectory() + "chromium-\(UUID().uuidString)"
        let errors = profile + ".log"
        defer {
            try? FileManager.default.removeItem(atPath: profile)
            try? FileManager.default.removeItem(atPath: errors)
        }
        // As root Chromium refuses to start without --no-sandbox.
        let sandbox = getuid() == 0 ? "--no-sandbox" : ""
        let r = try sh("timeout 120 chromium --headless \(sandbox) --disable-gpu --disable-dev-shm-usage --no-first-run "
            + "--user-data-dir=\(profile) --enable-logging=stderr --v=0 --virtual-time-budget=\(virtualMillis) "
            + "--dump-dom '\(url)' 2>\(errors)")
        let log = (try? String(contentsOfFile: errors, encoding: .utf8)) ?? ""
        guard r.status == 0, r.output.contains("</html>") else {
            throw TestFailure("chromium exited \(r.status): \(r.output.suffix(500)) \(log.suffix(2000))")
        }
        return RenderedPage(html: r.output, console: log.split(separator: "\n").filter { $0.contains(":CONSOLE") }.map(String.init))
    }

    /// The attribute `name` of the first start tag that holds `marker` (`id="p50"`, `<body`).
    func attribute(_ name: String, ofTagWith marker: String) -> String? {
        Self.tag(with: marker, in: html[...]).flatMap { Self.attribute(name, of: $0) }
    }

    /// The number in `data-value` of the element with `id`; nil when it is empty (shown as a dash) or missing.
    func value(id: String) -> Double? {
        attribute("data-value", ofTagWith: "id=\"\(id)\"").flatMap(Double.init)
    }

    /// The number in `data-value` of the cell `data-field="field"` in the table row that holds `marker`.
    func field(_ field: String, inRowWith marker: String) -> Double? {
        guard let hit = html.range(of: marker),
              let start = html[..<hit.lowerBound].range(of: "<tr", options: .backwards),
              let end = html[hit.upperBound...].range(of: "</tr>") else { return nil }
        let row = html[start.lowerBound..<end.upperBound]
        return Self.tag(with: "data-field=\"\(field)\"", in: row).flatMap { Self.attribute("data-value", of: $0) }.flatMap(Double.init)
    }

    /// Every value of attribute `name` in the page's elements, in order (not in the text of its scripts).
    func all(_ name: String) -> [String] {
        let markup = html.components(separatedBy: "<script").first ?? html
        return markup.components(separatedBy: " \(name)=\"").dropFirst().map { String($0.prefix { $0 != "\"" }) }
    }

    private static func tag(with marker: String, in text: Substring) -> Substring? {
        guard let hit = text.range(of: marker),
              let open = text[..<hit.upperBound].lastIndex(of: "<"),
              let close = text[hit.upperBound...].firstIndex(of: ">") else { return nil }
        return text[open...close]
    }

    private static func attribute(_ name: String, of tag: Substring) -> String? {
        guard let r = tag.range(of: " \(name)=\"") else { return nil }
        let value = tag[r.upperBound...].prefix { $0 != "\"" }
        return value.replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&amp;", with: "&")
    }
}
