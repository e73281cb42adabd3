/// What the access log needs of a request that only the moment it happens knows, kept in its
/// workspace: the request line, copied as the request begins (its buffer may be given back
/// before the response ends), and the server of the latest attempt with its timings and the
/// retries, recorded as they happen.
final class AccessRecord {
    /// Target bytes logged; a longer target is cut there and marked `...` (every line must fit a
    /// datagram, and a log is for reading).
    static let targetLimit = 2048
    /// The method (at most 32 bytes: the parser's limit) and then the target.
    private var line: UnsafeMutableRawBufferPointer?
    private(set) var methodLength = 0
    private(set) var targetLength = 0
    private(set) var targetCut = false
    private(set) var versionMinor = 1

    unowned(unsafe) var upstream: UpstreamServer?
    var connect: UInt64?
    var header: UInt64?
    var retries = 0

    /// The `versionMinor` that stands for HTTP/2 (its requests are HTTP/1.1 heads inside).
    static let http2 = 20

    deinit { line?.deallocate() }

    /// Starts the record of a request over, its method and target copied from `head`.
    func begin(method: UnsafeRawBufferPointer, target: UnsafeRawBufferPointer, versionMinor: Int) {
        let buffer = line ?? .allocate(byteCount: 64 + Self.targetLimit, alignment: 8)
        line = buffer
        methodLength = min(method.count, 64)
        targetLength = min(target.count, Self.targetLimit)
        targetCut = target.count > targetLength
        if let m = method.baseAddress { buffer.baseAddress!.copyMemory(from: m, byteCount: methodLength) }
        if let t = target.baseAddress { (buffer.baseAddress! + 64).copyMemory(from: t, byteCount: targetLength) }
        self.versionMinor = versionMinor
        upstream = nil
        connect = nil
        header = nil
        retries = 0
    }

    /// Nothing known yet (a request whose head may never parse is logged with `-`).
    func clear() {
        methodLength = 0
        targetLength = 0
        targetCut = false
        upstream = nil
        connect = nil
        header = nil
        retries = 0
    }

    /// An attempt on `server`: connected in `connect` ns (0 for a pooled connection; nil when
    /// connecting failed); no response head yet.
    func attempt(_ server: UpstreamServer, connect: UInt64?) {
        upstream = server
        self.connect = connect
        header = nil
    }

    /// The entry for this request, its request line pointing into this record.
    func fill(_ e: inout AccessEntry) {
        guard let buffer = line else { return }
        e.method = UnsafeRawBufferPointer(rebasing: buffer[0..<methodLength])
        e.target = UnsafeRawBufferPointer(rebasing: buffer[64..<(64 + targetLength)])
        e.targetCut = targetCut
        e.versionMinor = versionMinor
        e.upstream = upstream?.label
        e.connect = connect
        e.header = header
        e.retries = retries
    }
}
