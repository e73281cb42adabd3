@testable import Proxy
import Testing

/// /status.json from exposition text: figures summed over backends, the `worker="<slot>"` series
/// of each worker (or the process's own as worker 0), and null for what the text lacks.
@Suite("Status snapshot")
struct StatusSnapshotTests {
    static func json(_ text: String) -> String {
        StatusSnapshot(exposition: Array(text.utf8)).json(time: 1.5).text
    }

    static let twoBackends = """
        gatehouse_client_connections{state="idle"} 3
        gatehouse_client_connections_open 3
        gatehouse_requests_total{backend="a",status_class="2xx"} 5
        gatehouse_requests_total{backend="a",status_class="5xx"} 1
        gatehouse_requests_total{backend="c",status_class="2xx"} 2
        gatehouse_upstream_queue_length{backend="a"} 4
        gatehouse_upstream_queue_length{backend="c"} 0
        gatehouse_upstream_server_up{backend="a",server="s:1"} 1
        gatehouse_upstream_connections{backend="a",server="s:1",state="active"} 2
        gatehouse_upstream_connections{backend="a",server="s:1",state="idle"} 1
        gatehouse_upstream_requests_total{backend="a",server="s:1"} 6
        gatehouse_upstream_server_up{backend="c",server="s\\"2"} 0
        gatehouse_request_duration_seconds_bucket{backend="a",le="0.001"} 1
        gatehouse_request_duration_seconds_bucket{backend="a",le="0.5"} 6
        gatehouse_request_duration_seconds_bucket{backend="a",le="+Inf"} 6
        gatehouse_request_duration_seconds_count{backend="a"} 6
        gatehouse_request_duration_seconds_bucket{backend="c",le="0.001"} 0
        gatehouse_request_duration_seconds_bucket{backend="c",le="0.5"} 1
        gatehouse_request_duration_seconds_bucket{backend="c",le="+Inf"} 2
        gatehouse_request_duration_seconds_count{backend="c"} 2
        gatehouse_loop_busy_seconds_total 0.25
        process_resident_memory_bytes 1000

        """

    @Test("requests and latency buckets summed over backends; each backend with its queue and servers; a single process is worker 0")
    func singleProcess() {
        let doc = Self.json(Self.twoBackends)
        #expect(doc.hasPrefix(#"{"time":1.5,"connections":{"open":3,"accepted":null,"states":{"idle":3}}"#), "\(doc)")
        #expect(doc.contains(#""requests":{"total":8,"in_flight":null,"bad":null,"classes":{"2xx":7,"5xx":1}}"#), "\(doc)")
        #expect(doc.contains(#""latency":{"le":[0.001,0.5],"buckets":[1,7],"count":8,"sum":null}"#), "\(doc)")
        #expect(doc.contains(#"{"name":"a","queue":4,"requests":{"2xx":5,"5xx":1},"servers":[{"server":"s:1","up":1,"active":2,"idle":1,"#), "\(doc)")
        #expect(doc.contains(#""requests":6,"connects":null"#), "\(doc)")
        #expect(doc.contains(#"{"name":"c","queue":0,"requests":{"2xx":2},"servers":[{"server":"s\"2","up":0,"active":null"#), "\(doc)")
        #expect(doc.contains(#""workers":{"count":1,"configured":null,"restarts":null,"each":[{"worker":"0","busy_seconds":0.25,"rss_bytes":1000,"connections":3}]}"#), "\(doc)")
    }

    @Test("with workers: one entry per worker= series, the count from gatehouse_workers")
    func workers() {
        let doc = Self.json("""
            gatehouse_loop_busy_seconds_total 9
            gatehouse_worker_client_connections{worker="0"} 4
            gatehouse_worker_client_connections{worker="1"} 6
            gatehouse_worker_loop_busy_seconds_total{worker="0"} 1.5
            gatehouse_worker_loop_busy_seconds_total{worker="1"} 2
            gatehouse_worker_resident_memory_bytes{worker="0"} 100
            gatehouse_worker_resident_memory_bytes{worker="1"} 200
            gatehouse_workers 2
            gatehouse_workers_configured 3
            gatehouse_worker_restarts_total 1
            """)
        #expect(doc.contains(#""workers":{"count":2,"configured":3,"restarts":1,"each":["#
            + #"{"worker":"0","busy_seconds":1.5,"rss_bytes":100,"connections":4},"#
            + #"{"worker":"1","busy_seconds":2,"rss_bytes":200,"connections":6}]}"#), "\(doc)")
    }

    @Test("JSON strings escape quotes, backslashes and control characters; numbers that JSON cannot hold are null")
    func encoding() {
        #expect(JSONValue.string("a\"b\\c\nd\u{1}").text == #""a\"b\\c\nd\u0001""#)
        #expect(JSONValue.array([.number(.nan), .number(.infinity), .number(3), .number(0.5), .null]).text == "[null,null,3,0.5,null]")
    }
}
