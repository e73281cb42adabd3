/// The proxy's own short responses (errors, 100 Continue). Built once; sent rarely.
enum Responses {
    static let continue100: StaticString = "HTTP/1.1 100 Continue\r\n\r\n"

    static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 400: return "Bad Request"
        case 404: return "Not Found"
        case 408: return "Request Timeout"
        case 413: return "Content Too Large"
        case 414: return "URI Too Long"
        case 417: return "Expectation Failed"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        case 505: return "HTTP Version Not Supported"
        default: return "Error"
        }
    }

    /// A complete response with a short text body.
    static func error(_ status: Int, close: Bool, retryAfter: Int? = nil) -> [UInt8] {
        let reason = reasonPhrase(status)
        let body = "\(status) \(reason)\n"
        var head = "HTTP/1.1 \(status) \(reason)\r\nServer: gatehouse\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\n"
        if let r = retryAfter { head += "Retry-After: \(r)\r\n" }
        head += close ? "Connection: close\r\n" : ""
        return Array((head + "\r\n" + body).utf8)
    }
}
