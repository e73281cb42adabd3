import Foundation

/// One access-log line read back, from either format, into the same fields: the text format's
/// `\xHH` escapes undone, so a target compares equal to what the client sent whichever format
/// wrote it.
struct AccessLine {
    var client = ""
    var time = Date.distantPast
    /// Nil when the line says the request line is unknown (`"-"`, or nulls in JSON).
    var method: String?
    var target: String?
    var proto: String?
    var status = 0
    var bytes = 0
    var duration = 0.0
    var upstream: String?
    var connect: Double?
    var response: Double?
    var retries = 0
    var tls: String?
    var id: String?

    static func parse(_ line: String, json: Bool) throws -> AccessLine {
        json ? try AccessLine(json: line) : try AccessLine(text: line)
    }

    static let textPattern = try! NSRegularExpression(pattern:
        #"^(\S+) - \[([^\]]+)\] "(?:-|(\S+) (\S+) (HTTP/1\.[01]|HTTP/2\.0))" (\d+) (\d+) (\d+\.\d{3}) upstream=(\S+) connect=(\S+) response=(\S+) retries=(\d+) tls=(\S+) id=(\S+)$"#)

    init(text line: String) throws {
        let ns = line as NSString
        guard let m = Self.textPattern.firstMatch(in: line, range: NSRange(location: 0, length: ns.length)) else {
            throw TestFailure("not a text access-log line: \(line)")
        }
        func group(_ i: Int) -> String? { m.range(at: i).location == NSNotFound ? nil : ns.substring(with: m.range(at: i)) }
        func dash(_ i: Int) -> String? { group(i) == "-" ? nil : group(i) }
        client = group(1)!
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = "dd/MMM/yyyy:HH:mm:ss Z"
        guard let t = f.date(from: group(2)!) else { throw TestFailure("bad time in \(line)") }
        time = t
        method = group(3)
        target = group(4).map(Self.unescape)
        proto = group(5)
        status = Int(group(6)!)!
        bytes = Int(group(7)!)!
        duration = Double(group(8)!)!
        upstream = dash(9)
        connect = dash(10).flatMap(Double.init)
        response = dash(11).flatMap(Double.init)
        retries = Int(group(12)!)!
        tls = dash(13)
        id = dash(14)
    }

    init(json line: String) throws {
        guard let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw TestFailure("not a JSON object: \(line)")
        }
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        guard let c = o["client"] as? String, let ts = o["time"] as? String, let t = f.date(from: ts),
              let s = o["status"] as? Int, let b = o["bytes_sent"] as? Int, let d = o["request_time"] as? Double,
              let r = o["retries"] as? Int else { throw TestFailure("fields missing in \(line)") }
        func string(_ key: String) -> String? { o[key] as? String }
        func seconds(_ key: String) -> Double? { o[key] as? Double }
        (client, time, status, bytes, duration, retries) = (c, t, s, b, d, r)
        (method, target, proto) = (string("method"), string("target"), string("protocol"))
        (upstream, connect, response) = (string("upstream_addr"), seconds("upstream_connect_time"), seconds("upstream_header_time"))
        (tls, id) = (string("tls"), string("request_id"))
    }

    /// `\xHH` back to the byte.
    static func unescape(_ s: String) -> String {
        var out: [UInt8] = []
        let b = Array(s.utf8)
        var i = 0
        while i < b.count {
            if b[i] == UInt8(ascii: "\\"), i + 3 < b.count, b[i + 1] == UInt8(ascii: "x"),
               let v = UInt8(String(decoding: b[(i + 2)...(i + 3)], as: UTF8.self), radix: 16) {
                out.append(v)
                i += 4
            } else {
                out.append(b[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
