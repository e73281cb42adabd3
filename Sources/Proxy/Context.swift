import Config
import HTTP1
import Runtime
import TLS

/// Per-request scratch: parsers, the gather list and the upstream buffer slot. Pooled, so a
/// connection holds one only while a request is in progress (from its first bytes to the end of
/// its response), and the most recently used, still in cache, is handed out first.
final class Workspace: @unchecked Sendable {
    var request: HeadParser
    var response: HeadParser
    let iov = IOVecList()
    let upstream: BufferSlot
    /// A request body read before a backend is leased (beyond what came with the head).
    let requestSpool: BufferChain
    /// A response read from the backend ahead of the client.
    let responseQueue: BufferChain
    /// Room for the client's address in X-Forwarded-For.
    let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
    /// The request's "X-Request-ID: id\r\n" (`RequestID.line`); 0 long with `request_id off`.
    let requestIDLine = RequestID.makeLineBuffer()
    var requestIDLength = 0
    /// What the access log says of the request (kept up only while the log is on).
    let access = AccessRecord()

    /// The request's id, for logs ("-" with `request_id off`).
    var requestID: String {
        guard requestIDLength > 0 else { return "-" }
        return String(decoding: UnsafeRawBufferPointer(rebasing: requestIDLine[RequestID.prefix.count..<(requestIDLength - 2)]), as: UTF8.self)
    }

    init(limits: HeadLimits, clientPool: BufferPool, upstreamPool: BufferPool) {
        requestSpool = BufferChain(pool: clientPool)
        responseQueue = BufferChain(pool: upstreamPool)
        request = HeadParser(kind: .request, limits: limits)
        var responseLimits = limits
        responseLimits.maxHeadBytes = upstreamPool.bufferSize
        responseLimits.maxHeaders = 256
        response = HeadParser(kind: .response, limits: responseLimits)
        upstream = BufferSlot(pool: upstreamPool)
    }

    /// Where a gather list is coalesced before SSL_write (one record, not one per span): for the
    /// client and, apart (the request's added lines may live in the client's), for a TLS backend.
    /// Made the first time a TLS connection uses this workspace.
    private var staging: UnsafeMutableRawBufferPointer?
    private var upStaging: UnsafeMutableRawBufferPointer?
    var tlsStaging: UnsafeMutableRawBufferPointer { Self.lazily(&staging) }
    var upstreamStaging: UnsafeMutableRawBufferPointer { Self.lazily(&upStaging) }

    private static func lazily(_ slot: inout UnsafeMutableRawBufferPointer?) -> UnsafeMutableRawBufferPointer {
        if let s = slot { return s }
        let s = UnsafeMutableRawBufferPointer.allocate(byteCount: 16 * 1024, alignment: 16)
        slot = s
        return s
    }

    deinit {
        scratch.deallocate()
        requestIDLine.deallocate()
        staging?.deallocate()
        upStaging?.deallocate()
    }
}

/// What every session of the process shares: configuration, pools, stats.
final class ProxyContext: @unchecked Sendable {
    let config: Configuration
    let stats = ProxyStats()
    let tlsStats = TLSStats()
    let clientBuffers: BufferPool
    let upstreamBuffers: BufferPool
    private var workspaces: [Workspace] = []
    let headLimits: HeadLimits
    var draining = false
    /// The client-certificate subject header (lowercase) some TLS listener sets, if any: dropped
    /// from what clients send on every listener.
    var subjectHeaderLowercased: [UInt8]?
    /// Called when a request finishes: group index, status, duration in ns.
    var onRequestDone: (Int, Int, UInt64) -> Void = { _, _, _ in }

    let errorLog = ErrorLog()
    /// Set when `access_log` is on and the supervisor handed over its socket.
    var accessLog: AccessLog?
    var requestIDs = RequestIDSource()
    /// The HTTP/2 response fields being submitted (one at a time: building and submitting them
    /// never suspends), and stream records to reuse (their buffers keep their storage).
    var h2Fields = H2ResponseHead()
    var h2SpareStreams: [H2Stream] = []

    init(config: Configuration) {
        self.config = config
        clientBuffers = BufferPool(bufferSize: config.bufferSize, maxFree: config.bufferCacheCount)
        upstreamBuffers = BufferPool(bufferSize: config.bufferSize, maxFree: config.bufferCacheCount)
        headLimits = HeadLimits(maxHeadBytes: config.limits.maxHeaderBytes, maxTargetBytes: config.limits.maxURIBytes, maxHeaders: config.limits.maxHeaders)
    }

    private var freeSessions: [ClientSession] = []

    /// Allocates connection records up front, as nginx does with its connection array: made on a
    /// clean heap they sit densely, instead of in the holes a burst of requests leaves behind
    /// (which would keep those pages resident long after the burst).
    func preallocateSessions(_ n: Int, group: UpstreamGroup) {
        freeSessions.reserveCapacity(n)
        for _ in 0..<n { freeSessions.append(ClientSession(ctx: self, group: group)) }
        freeSessions.reverse()
    }

    /// A session record for a new connection, from the free list (refilled 64 at a time when
    /// more connections arrive than were preallocated).
    func makeSession(fd: Int32, peer: String, group: UpstreamGroup, groupIndex: Int, tls: TLSServerContext?) -> ClientSession? {
        if freeSessions.isEmpty {
            for _ in 0..<64 { freeSessions.append(ClientSession(ctx: self, group: group)) }
        }
        let s = freeSessions.removeLast()
        guard s.start(fd: fd, peer: peer, group: group, groupIndex: groupIndex, tls: tls) else {
            freeSessions.append(s)
            return nil
        }
        return s
    }

    /// A closed session whose task has finished goes back to the free list.
    func recycle(_ s: ClientSession) {
        freeSessions.append(s)
    }

    /// Live client sessions by fd, so a drain can find the idle ones.
    var sessions: [ClientSession?] = []

    func register(_ s: ClientSession) {
        let fd = Int(s.socket.fd)
        if fd >= sessions.count { sessions.append(contentsOf: repeatElement(nil, count: fd + 1 - sessions.count + 64)) }
        sessions[fd] = s
    }

    func unregister(_ s: ClientSession) {
        let fd = Int(s.socket.fd)
        if fd < sessions.count, sessions[fd] === s { sessions[fd] = nil }
    }

    /// Closes the connections between requests (parked, or waiting for a request to begin) that
    /// have waited at least `quietFor`. Draining,
    /// one that only just got its response is left a moment: its client may be sending the next
    /// request this instant, and closing then would reset it (the keep-alive race); that request
    /// gets its answer with `Connection: close` instead.
    func closeIdleSessions(quietFor: UInt64 = 0) {
        let now = EventLoop.shared.now
        for case let s? in sessions {
            if let h = s.h2 { h.drain() } else if s.isBetweenRequests && now &- s.state.idleSince >= quietFor { s.close() }
        }
    }

    /// Gives memory from a burst back: caches shrink toward what is in use, and free heap pages
    /// go back to the kernel, so RSS after a burst reflects the connections that remain.
    func housekeeping() {
        clientBuffers.release(keep: max(32, min(config.bufferCacheCount, clientBuffers.inUse)))
        upstreamBuffers.release(keep: max(32, min(config.bufferCacheCount, upstreamBuffers.inUse)))
        var freed = 0
        let keepWorkspaces = max(32, min(config.bufferCacheCount, workspacesInUse))
        if workspaces.count > keepWorkspaces {
            freed += workspaces.count - keepWorkspaces
            workspaces.removeLast(workspaces.count - keepWorkspaces)
        }
        // Measuring the heap (mallinfo2) and giving it back (malloc_trim) walk the allocator's
        // free lists: a fraction of a millisecond to milliseconds on a big heap, which every
        // connection would wait out. So the heap is measured here, when the load is down or every
        // 10 s at most, never by a scrape, and trimmed only after a burst.
        let quiet = stats.requestsInFlight < 64
        let now = EventLoop.shared.now
        if quiet || now &- heapMeasuredAt >= 10_000_000_000 { measureHeap() }
        guard quiet else { return }
        if freed > 0 || heap.free > heapFreeAfterTrim + (4 << 20) {
            ProcessStats.trimHeap()
            measureHeap()
            heapFreeAfterTrim = heap.free
        }
    }

    /// The heap as of the last `measureHeap()` (what the metrics show).
    private(set) var heap: (inUse: Int, free: Int) = (0, 0)
    private var heapMeasuredAt: UInt64 = 0
    private var heapFreeAfterTrim = 0

    func measureHeap() {
        heap = ProcessStats.heap()
        heapMeasuredAt = EventLoop.shared.now
    }

    /// Whether a connection may take a buffer beyond its first in either direction: buffer
    /// memory in use is under `limits.buffer_memory`. When it is not, reads wait for the other
    /// side to drain instead (backpressure), so memory stays bounded under any mix of slow peers.
    var mayTakeExtraBuffer: Bool {
        clientBuffers.bytesInUse + upstreamBuffers.bytesInUse < config.limits.bufferMemory
    }

    private var workspacesInUse = 0

    func takeWorkspace() -> Workspace {
        workspacesInUse += 1
        return workspaces.popLast() ?? Workspace(limits: headLimits, clientPool: clientBuffers, upstreamPool: upstreamBuffers)
    }

    func giveWorkspace(_ w: Workspace) {
        w.upstream.release()
        w.requestSpool.release()
        w.responseQueue.release()
        workspacesInUse -= 1
        if workspaces.count < config.bufferCacheCount { workspaces.append(w) }
    }
}
