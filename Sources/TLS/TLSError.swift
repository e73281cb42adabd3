import CTLSShim

/// Reading OpenSSL's per-thread error queue.
enum TLSError {
    /// The text of the earliest queued error ("" if none); leaves the queue as it is.
    static func openSSLText() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        gh_err_text(&buf, buf.count)
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
