import CNghttp2
import Glibc

/// What an HTTP/2 server session reports while it reads bytes: nghttp2's callbacks, translated.
/// nghttp2 has already checked what RFC 9113 §8 asks of the fields (pseudo-headers, lowercase
/// names, no connection-specific fields, `te: trailers` only, content-length against DATA) and
/// answers a violation with RST_STREAM or GOAWAY itself.
protocol H2SessionDelegate: AnyObject {
    /// A request's HEADERS began on a new stream.
    func h2Begin(stream: Int32)
    /// One field of it; false refuses the stream (RST_STREAM PROTOCOL_ERROR).
    func h2Field(stream: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> Bool
    /// The request head is complete; `ended`: no body follows.
    func h2HeadDone(stream: Int32, ended: Bool)
    /// Request body bytes.
    func h2Data(stream: Int32, _ bytes: UnsafeRawBufferPointer)
    /// The request body ended (END_STREAM).
    func h2BodyEnded(stream: Int32)
    /// The stream closed (reset by either side, or both ended).
    func h2Closed(stream: Int32, error: UInt32)
    /// The peer sent something invalid (counted toward GOAWAY).
    func h2Misbehaved()
    /// Response body for `stream` into `into`: bytes copied, and whether the body ends there;
    /// nil when none is ready yet (the stream is resumed when it is).
    func h2ResponseBytes(stream: Int32, into: UnsafeMutableRawBufferPointer) -> (count: Int, end: Bool)?
    /// A GOAWAY went out with `code`.
    func h2SentGoAway(code: UInt32)
}

/// One nghttp2 server session. The loop feeds it what the socket read (`receive`) and writes what
/// it produces (`output`); no I/O happens inside it.
final class H2Session {
    private var raw: OpaquePointer?
    /// Unowned: the delegate owns the session and outlives it.
    fileprivate unowned(unsafe) let delegate: H2SessionDelegate

    struct Limits {
        var maxConcurrentStreams: Int
        var maxHeaderListSize: Int
        /// Initial stream window (and so the most request body a stream may have in flight).
        var streamWindow: Int = 64 * 1024
    }

    init?(delegate: H2SessionDelegate, limits: Limits) {
        self.delegate = delegate
        var cbs: OpaquePointer?
        guard nghttp2_session_callbacks_new(&cbs) == 0, let cbs else { return nil }
        defer { nghttp2_session_callbacks_del(cbs) }
        Self.install(cbs)
        var opt: OpaquePointer?
        guard nghttp2_option_new(&opt) == 0, let opt else { return nil }
        defer { nghttp2_option_del(opt) }
        // Window updates only as the backend takes the request body (`consume`), so a stream never
        // holds more than its window in memory; nghttp2 still returns the connection window for
        // DATA of streams already closed.
        nghttp2_option_set_no_auto_window_update(opt, 1)
        nghttp2_option_set_max_send_header_block_length(opt, 64 * 1024)
        // Rapid reset (CVE-2023-44487): at most a burst of 1,000 resets, then 33 a second.
        nghttp2_option_set_stream_reset_rate_limit(opt, 1000, 33)
        // CONTINUATION flood (CVE-2024-28182): a header block in at most 8 frames after HEADERS.
        nghttp2_option_set_max_continuations(opt, 8)
        nghttp2_option_set_max_settings(opt, 32)
        var s: OpaquePointer?
        guard nghttp2_session_server_new2(&s, cbs, Unmanaged.passUnretained(self).toOpaque(), opt) == 0, let s else { return nil }
        raw = s
        var settings = [
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), value: UInt32(limits.maxConcurrentStreams)),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue), value: UInt32(limits.maxHeaderListSize)),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: UInt32(limits.streamWindow)),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue), value: 0),
        ]
        guard nghttp2_submit_settings(s, UInt8(NGHTTP2_FLAG_NONE.rawValue), &settings, settings.count) == 0 else { return nil }
        // The connection window: enough for every stream's window at once.
        _ = nghttp2_session_set_local_window_size(s, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, Int32(min(limits.maxConcurrentStreams * limits.streamWindow, Int(Int32.max))))
    }

    deinit { if let raw { nghttp2_session_del(raw) } }

    // MARK: Bytes in, bytes out

    /// Feeds bytes read from the client; false when the session is beyond repair (the caller sends
    /// what `output` still has, then closes).
    func receive(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let raw else { return false }
        let n = nghttp2_session_mem_recv(raw, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count)
        if n < 0 {
            // Bad input the library did not answer itself (e.g. a bad preface): say so and stop.
            _ = nghttp2_session_terminate_session(raw, UInt32(NGHTTP2_PROTOCOL_ERROR.rawValue))
            return false
        }
        return true
    }

    /// The next bytes to send, empty when nothing is due; nil when the session failed. Valid until
    /// the next call.
    func output() -> UnsafeRawBufferPointer? {
        guard let raw else { return nil }
        var p: UnsafePointer<UInt8>?
        let n = nghttp2_session_mem_send(raw, &p)
        if n < 0 { return nil }
        return UnsafeRawBufferPointer(start: p, count: n)
    }

    /// Whether the session still reads or writes (false once a GOAWAY finished it).
    var isAlive: Bool {
        guard let raw else { return false }
        return nghttp2_session_want_read(raw) != 0 || nghttp2_session_want_write(raw) != 0
    }

    // MARK: Acting on streams

    /// Submits a response head; the body is read through `h2ResponseBytes` unless `hasBody` is false.
    func respond(stream: Int32, _ fields: UnsafeMutablePointer<nghttp2_nv>, count: Int, hasBody: Bool) -> Bool {
        guard let raw else { return false }
        if !hasBody { return nghttp2_submit_response(raw, stream, fields, count, nil) == 0 }
        var provider = nghttp2_data_provider(source: nghttp2_data_source(ptr: nil), read_callback: Self.readBody)
        return nghttp2_submit_response(raw, stream, fields, count, &provider) == 0
    }

    /// More response body is ready for a stream whose read said it had none.
    func resume(stream: Int32) {
        if let raw { _ = nghttp2_session_resume_data(raw, stream) }
    }

    /// `n` bytes of a stream's request body reached the backend: the client may send as many more.
    func consumed(stream: Int32, _ n: Int) {
        if let raw, n > 0 { _ = nghttp2_session_consume(raw, stream, n) }
    }

    /// `n` bytes of DATA that will never reach a backend (their stream is done or gone): the
    /// connection window must still get them back, or it shrinks for good.
    func discarded(stream: Int32, _ n: Int, streamOpen: Bool) {
        guard let raw, n > 0 else { return }
        if streamOpen { _ = nghttp2_session_consume(raw, stream, n) } else { _ = nghttp2_session_consume_connection(raw, n) }
    }

    func reset(stream: Int32, code: UInt32) {
        if let raw { _ = nghttp2_submit_rst_stream(raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), stream, code) }
    }

    /// A GOAWAY with `code`: no new streams; the session ends once those open are done. Returns
    /// the last stream it says will be processed.
    func goAway(code: UInt32) -> Int32 {
        guard let raw else { return 0 }
        let last = nghttp2_session_get_last_proc_stream_id(raw)
        _ = nghttp2_submit_goaway(raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), last, code, nil, 0)
        return last
    }

    // MARK: Callbacks

    private static func install(_ cbs: OpaquePointer) {
        nghttp2_session_callbacks_set_on_begin_headers_callback(cbs) { _, frame, user in
            if let frame, h2IsRequestHeaders(frame) { h2Delegate(user).h2Begin(stream: frame.pointee.hd.stream_id) }
            return 0
        }
        nghttp2_session_callbacks_set_on_header_callback(cbs) { _, frame, name, namelen, value, valuelen, _, user in
            guard let frame, h2IsRequestHeaders(frame) else { return 0 }  // trailers are not forwarded
            let ok = h2Delegate(user).h2Field(stream: frame.pointee.hd.stream_id, name: UnsafeRawBufferPointer(start: name, count: namelen),
                                            value: UnsafeRawBufferPointer(start: value, count: valuelen))
            return ok ? 0 : Int32(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
        }
        nghttp2_session_callbacks_set_on_frame_recv_callback(cbs) { _, frame, user in
            guard let frame else { return 0 }
            let d = h2Delegate(user)
            let id = frame.pointee.hd.stream_id, flags = frame.pointee.hd.flags
            switch UInt32(frame.pointee.hd.type) {
            case NGHTTP2_HEADERS.rawValue:
                if frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST {
                    d.h2HeadDone(stream: id, ended: flags & h2EndStream != 0)
                } else if flags & h2EndStream != 0 {
                    d.h2BodyEnded(stream: id)  // after trailers
                }
            case NGHTTP2_DATA.rawValue:
                if flags & h2EndStream != 0 {
                    d.h2BodyEnded(stream: id)
                } else if frame.pointee.hd.length == 0 {
                    d.h2Misbehaved()  // an empty DATA frame that ends nothing: a known flood
                }
            default:
                break
            }
            return 0
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs) { _, _, stream, data, len, user in
            h2Delegate(user).h2Data(stream: stream, UnsafeRawBufferPointer(start: data, count: len))
            return 0
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs) { _, stream, code, user in
            h2Delegate(user).h2Closed(stream: stream, error: code)
            return 0
        }
        nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs) { _, _, _, user in
            h2Delegate(user).h2Misbehaved()
            return 0
        }
        nghttp2_session_callbacks_set_on_frame_send_callback(cbs) { _, frame, user in
            if let frame, frame.pointee.hd.type == UInt8(NGHTTP2_GOAWAY.rawValue) {
                h2Delegate(user).h2SentGoAway(code: frame.pointee.goaway.error_code)
            }
            return 0
        }
    }

    private static let readBody: nghttp2_data_source_read_callback = { _, stream, buf, length, flags, _, user in
        guard let r = h2Delegate(user).h2ResponseBytes(stream: stream, into: UnsafeMutableRawBufferPointer(start: buf, count: length)) else {
            return Int(NGHTTP2_ERR_DEFERRED.rawValue)
        }
        if r.end { flags!.pointee |= UInt32(NGHTTP2_DATA_FLAG_EOF.rawValue) }
        return r.count
    }
}

private func h2Delegate(_ user: UnsafeMutableRawPointer?) -> H2SessionDelegate {
    Unmanaged<H2Session>.fromOpaque(user!).takeUnretainedValue().delegate
}

private func h2IsRequestHeaders(_ f: UnsafePointer<nghttp2_frame>) -> Bool {
    f.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue) && f.pointee.headers.cat == NGHTTP2_HCAT_REQUEST
}

private let h2EndStream = UInt8(NGHTTP2_FLAG_END_STREAM.rawValue)
