import Telemetry
import Testing

/// The request-path histogram, rendered: cumulative buckets where a value on a bound counts in
/// that bucket (`le`), sum and count, one HELP/TYPE per family, label values escaped.
@Suite("Loop histogram")
struct LoopHistogramTests {
    static func lines(_ registry: MetricsRegistry) -> [String] {
        String(decoding: registry.render(), as: UTF8.self).split(separator: "\n").map(String.init)
    }

    @Test("observations land in cumulative buckets; sum and count agree")
    func buckets() {
        let r = MetricsRegistry()
        let h = r.latency("t_seconds", "test", [("backend", "a")])
        // 0.002 and 0.004 are bounds (1 ms × 2^(8/8), 2^(16/8)); 0.05 lies between 0.0493507 and 0.0538174.
        for v in [0.0001, 0.002, 0.004, 0.05, 0.07, 3.0, 100.0] { h.record(v) }
        let text = Self.lines(r)
        #expect(text.filter { $0.hasPrefix("t_seconds_bucket{") }.count == 129)
        #expect(text.contains("t_seconds_bucket{backend=\"a\",le=\"0.001\"} 1"))
        #expect(text.contains("t_seconds_bucket{backend=\"a\",le=\"0.00183401\"} 1"))
        #expect(text.contains("t_seconds_bucket{backend=\"a\",le=\"0.002\"} 2"))  // a value on a bound is in that bucket
        #expect(text.contains("t_seconds_bucket{backend=\"a\",le=\"0.004\"} 3"))
        #expect(text.contains("t_seconds_bucket{backend=\"a\",le=\"0.0493507\"} 3"))
        #expect(text.contains("t_seconds_bucket{backend=\"a\",le=\"0.0538174\"} 4"))
        #expect(text.contains("t_seconds_bucket{backend=\"a\",le=\"0.0761093\"} 5"))
        #expect(text.contains("t_seconds_bucket{backend=\"a\",le=\"3.15845\"} 6"))
        #expect(text.contains("t_seconds_bucket{backend=\"a\",le=\"60.0968\"} 6"))
        #expect(text.contains("t_seconds_bucket{backend=\"a\",le=\"+Inf\"} 7"))
        #expect(text.contains("t_seconds_count{backend=\"a\"} 7"))
        let sum = text.first { $0.hasPrefix("t_seconds_sum{backend=\"a\"} ") }.flatMap { Double($0.split(separator: " ")[1]) }
        #expect(abs((sum ?? 0) - 103.1261) < 1e-9)
    }

    @Test("a NaN is dropped and a negative counts as zero; HELP text is escaped")
    func oddValues() {
        let r = MetricsRegistry()
        let h = r.latency("n_seconds", "two\nlines \\ here")
        h.record(.nan)
        h.record(-1)
        h.record(0.01)
        let text = Self.lines(r)
        #expect(text.contains("# HELP n_seconds two\\nlines \\\\ here"))
        #expect(text.contains("n_seconds_count 2"))
        #expect(text.contains("n_seconds_bucket{le=\"0.001\"} 1"))
        #expect(text.contains("n_seconds_sum 0.01"))
    }

    @Test("one HELP and TYPE per family across label sets; no labels, no braces; values escaped")
    func families() {
        let r = MetricsRegistry()
        r.latency("f_seconds", "family", [("backend", "a\"b\\c")]).record(1)
        r.latency("f_seconds", "family", [("backend", "d")]).record(1)
        r.latency("g_seconds", "plain").record(1)
        r.latency("h_seconds", "crlf", [("backend", "x\r\ny")]).record(1)
        let text = Self.lines(r)
        #expect(text.filter { $0 == "# TYPE f_seconds histogram" }.count == 1)
        #expect(text.contains("f_seconds_count{backend=\"a\\\"b\\\\c\"} 1"))
        #expect(text.contains("f_seconds_count{backend=\"d\"} 1"))
        #expect(text.contains("g_seconds_count 1"))
        #expect(text.contains("g_seconds_bucket{le=\"+Inf\"} 1"))
        #expect(text.contains("h_seconds_count{backend=\"x\r\\ny\"} 1"))  // the newline of a CRLF escaped too
    }
}
