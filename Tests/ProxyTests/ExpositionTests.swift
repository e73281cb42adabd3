import Telemetry
import Testing

/// The exposition text read back: what the registry writes parses to the same names, labels and
/// values, escapes undone; comments and broken lines are passed over.
@Suite("Exposition parser")
struct ExpositionTests {
    @Test("the registry's own text reads back: series, escaped label values, histogram buckets with +Inf, sums")
    func roundTrip() {
        let r = MetricsRegistry()
        r.counter("t_total", "help", [("path", "a\"b\\c\nd"), ("kind", "x")]).set(total: 7)
        r.gauge("t_gauge", "help").set(2.5)
        let h = r.latency("t_seconds", "help", [("backend", "b")])
        for v in [0.0005, 0.002, 100.0] { h.record(v) }
        let samples = Exposition.parse(r.render())
        let counter = samples.first { $0.name == "t_total" }
        #expect(counter?.value == 7 && counter?.label("path") == "a\"b\\c\nd" && counter?.label("kind") == "x")
        #expect(counter?.labels.map(\.name) == ["path", "kind"])
        #expect(samples.first { $0.name == "t_gauge" }?.value == 2.5)
        let buckets = samples.filter { $0.name == "t_seconds_bucket" }
        #expect(buckets.count == 129 && buckets.allSatisfy { $0.label("backend") == "b" })
        #expect(buckets.first?.label("le") == "0.001" && buckets.first?.value == 1)
        #expect(buckets.last?.label("le") == "+Inf" && buckets.last?.value == 3)
        #expect(samples.first { $0.name == "t_seconds_count" }?.value == 3)
        #expect(abs((samples.first { $0.name == "t_seconds_sum" }?.value ?? 0) - 100.0025) < 1e-9)
        #expect(samples.count == 2 + 129 + 2)
    }

    @Test("special values, a timestamp, spaces after commas; comments, blank and broken lines skipped", arguments: [
        ("a 1", "a", [], 1.0),
        ("a{} +Inf", "a", [], Double.infinity),
        ("a -Inf 1700000000000", "a", [], -Double.infinity),
        ("b{x=\"1\", y=\"2\",} 1e3", "b", [("x", "1"), ("y", "2")], 1000.0),
        ("c{x=\"}{\"} 0.25", "c", [("x", "}{")], 0.25),
    ] as [(String, String, [(String, String)], Double)])
    func lines(_ c: (String, String, [(String, String)], Double)) {
        let samples = Exposition.parse(Array("# HELP a x\n\n\(c.0)\n".utf8))
        #expect(samples.count == 1)
        #expect(samples.first?.name == c.1 && samples.first?.value == c.3)
        #expect(samples.first.map { $0.labels.map { "\($0.name)=\($0.value)" } } == c.2.map { "\($0.0)=\($0.1)" })
    }

    @Test("a line that does not parse is skipped, the rest kept", arguments: [
        "a", "a{x=\"1\" 2", "a{x=1} 2", "a{x=\"1} 2", "{x=\"1\"} 2", "a x", "a{x=\"1\"}",
    ])
    func broken(_ line: String) {
        let samples = Exposition.parse(Array("before 1\n\(line)\nafter 2".utf8))
        #expect(samples.map(\.name) == ["before", "after"], "\(line.debugDescription)")
    }

    @Test("NaN parses as NaN")
    func nan() {
        #expect(Exposition.parse(Array("n NaN\n".utf8)).first?.value.isNaN == true)
    }
}
