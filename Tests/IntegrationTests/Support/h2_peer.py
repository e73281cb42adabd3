#!/usr/bin/env python3
"""HTTP/2 clients that misbehave on purpose (the `h2` package, PyPI), over cleartext prior knowledge.

  h2_peer.py rapidreset PORT N      N streams each opened (HEADERS) and reset (RST_STREAM) at once;
                                    prints "goaway CODE" when the server sends one, else "no goaway"
  h2_peer.py continuation PORT N    a HEADERS without END_HEADERS and N CONTINUATION frames;
                                    prints "goaway CODE", "closed" or "no goaway"
  h2_peer.py bigheaders PORT BYTES  a request whose field list is BYTES long; prints "status S" or "reset CODE"
  h2_peer.py clmismatch PORT        a POST with content-length 5 and 10 bytes of DATA, then a GET on
                                    the same connection; prints "first reset CODE; then status S"
  h2_peer.py pseudo PORT CASE       a request breaking RFC 9113 §8.3 (CASE: nopath, uppercase,
                                    connection, twomethods, te); prints "reset CODE", "goaway CODE" or "status S"
  h2_peer.py mixed PORT SLOW FAST   two streams on one connection, SLOW first; prints the seconds each
                                    took: "fast F slow S"
  h2_peer.py stall PORT PATH        requests PATH and never grants window; prints "stalled RECEIVED"
                                    after 3 s with the connection still open
  h2_peer.py discard PORT N         N streams each sending a 60 KB body no backend takes; prints
                                    "sent N STATUS:COUNT..." or "stalled at stream I of N"
Every wait is bounded (20 s).
"""
import socket, sys, time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import hyperframe.frame


def connect(port, validate=True):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                    validate_outbound_headers=validate, normalize_outbound_headers=validate)
    c = h2.connection.H2Connection(config=cfg)
    c.initiate_connection()
    s.sendall(c.data_to_send())
    return s, c


def request(path, method="GET", extra=()):
    return [(":method", method), (":path", path), (":scheme", "http"), (":authority", "t")] + list(extra)


def events(s, c, until, deadline=20.0):
    """Reads until `until(event)` is true for some event, the connection ends, or the deadline; all events."""
    seen = []
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        s.settimeout(max(0.05, end - time.monotonic()))
        try:
            data = s.recv(65536)
        except (socket.timeout, ConnectionResetError):
            break
        if not data:
            seen.append("closed")
            break
        try:
            evs = c.receive_data(data)
        except h2.exceptions.ProtocolError as e:
            # The library gives up on frames it does not expect (e.g. after its own resets); the
            # GOAWAY may still be in what it read.
            seen.append("protocol error")
            seen += goaway_frames(data)
            break
        out = c.data_to_send()
        if out:
            try:
                s.sendall(out)
            except OSError:
                pass
        seen += evs
        if any(until(e) for e in evs):
            break
    return seen


class RawGoAway:
    def __init__(self, code):
        self.code = code


def goaway_frames(data):
    """GOAWAY frames found by walking the raw frames in `data` (from its start)."""
    out, i = [], 0
    while i + 9 <= len(data):
        length = int.from_bytes(data[i:i + 3], "big")
        if data[i + 3] == 0x7 and i + 9 + 8 <= len(data):
            out.append(RawGoAway(int.from_bytes(data[i + 13:i + 17], "big")))
        i += 9 + length
    return out


def goaway(seen):
    for e in seen:
        if isinstance(e, RawGoAway):
            return f"goaway {e.code}"
    for e in seen:
        if isinstance(e, h2.events.ConnectionTerminated):
            return f"goaway {e.error_code.value if hasattr(e.error_code, 'value') else e.error_code}"
    return "closed" if "closed" in seen else "no goaway"


def rapidreset(port, n):
    s, c = connect(port)
    events(s, c, lambda e: isinstance(e, h2.events.RemoteSettingsChanged), 5)
    sid = 1
    for i in range(n):
        c.send_headers(sid, request("/"), end_stream=True)
        c.reset_stream(sid)
        sid += 2
        if i % 100 == 99:
            try:
                s.sendall(c.data_to_send())
            except OSError:
                break
    try:
        s.sendall(c.data_to_send())
    except OSError:
        pass
    print(goaway(events(s, c, lambda e: isinstance(e, h2.events.ConnectionTerminated))), flush=True)


def continuation(port, n):
    s, c = connect(port)
    events(s, c, lambda e: isinstance(e, h2.events.RemoteSettingsChanged), 5)
    block = c.encoder.encode(request("/"))
    s.sendall(hyperframe.frame.HeadersFrame(1, data=block, flags=["END_STREAM"]).serialize())
    try:
        for _ in range(n):
            s.sendall(hyperframe.frame.ContinuationFrame(1, data=c.encoder.encode([("x-pad", "a" * 10)])).serialize())
    except OSError:
        pass
    # The server may answer with GOAWAY and close before reading all of it.
    seen = []
    end = time.monotonic() + 10
    buf = b""
    while time.monotonic() < end:
        try:
            d = s.recv(65536)
        except (socket.timeout, ConnectionResetError):
            break
        if not d:
            seen.append("closed")
            break
        buf += d
    i = 0
    while i + 9 <= len(buf):
        length = int.from_bytes(buf[i:i + 3], "big")
        if buf[i + 3] == 0x7 and i + 9 + 8 <= len(buf):
            print(f"goaway {int.from_bytes(buf[i + 13:i + 17], 'big')}", flush=True)
            return
        i += 9 + length
    print("closed" if "closed" in seen else "no goaway", flush=True)


def status_or_reset(seen, sid):
    for e in seen:
        if isinstance(e, h2.events.ResponseReceived) and e.stream_id == sid:
            return "status " + dict(e.headers)[":status"]
        if isinstance(e, h2.events.StreamReset) and e.stream_id == sid:
            return f"reset {int(e.error_code)}"
    g = goaway(seen)
    return g if g != "no goaway" else "nothing"


def done(sid):
    return lambda e: (isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset)) and e.stream_id == sid) \
        or isinstance(e, h2.events.ConnectionTerminated)


def bigheaders(port, size):
    s, c = connect(port, validate=False)
    pad = [(f"x-pad-{i}", "v" * 1000) for i in range(size // 1040 + 1)]
    c.send_headers(1, request("/") + pad, end_stream=True)
    s.sendall(c.data_to_send())
    print(status_or_reset(events(s, c, done(1)), 1), flush=True)


def clmismatch(port):
    s, c = connect(port)
    c.send_headers(1, request("/", "POST", [("content-length", "5")]))
    c.send_data(1, b"0123456789", end_stream=True)
    s.sendall(c.data_to_send())
    first = status_or_reset(events(s, c, done(1)), 1)
    c.send_headers(3, request("/"), end_stream=True)
    s.sendall(c.data_to_send())
    print(f"first {first}; then {status_or_reset(events(s, c, done(3)), 3)}", flush=True)


def pseudo(port, case):
    s, c = connect(port, validate=False)
    headers = {
        "nopath": [(":method", "GET"), (":scheme", "http"), (":authority", "t")],
        "uppercase": request("/") + [("X-Upper", "1")],
        "connection": request("/") + [("connection", "keep-alive")],
        "twomethods": request("/") + [(":method", "POST")],
        "te": request("/") + [("te", "gzip")],
    }[case]
    c.send_headers(1, headers, end_stream=True)
    s.sendall(c.data_to_send())
    print(status_or_reset(events(s, c, done(1)), 1), flush=True)


def mixed(port, slow, fast):
    s, c = connect(port)
    start = time.monotonic()
    c.send_headers(1, request(slow), end_stream=True)
    c.send_headers(3, request(fast), end_stream=True)
    s.sendall(c.data_to_send())
    took = {}
    end = time.monotonic() + 20
    while len(took) < 2 and time.monotonic() < end:
        for e in events(s, c, lambda e: isinstance(e, h2.events.StreamEnded), 20):
            if isinstance(e, h2.events.DataReceived):
                c.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
            if isinstance(e, h2.events.StreamEnded):
                took[e.stream_id] = time.monotonic() - start
    print(f"fast {took.get(3, -1):.3f} slow {took.get(1, -1):.3f}", flush=True)


def stall(port, path):
    s, c = connect(port)
    c.send_headers(1, request(path), end_stream=True)
    s.sendall(c.data_to_send())
    got = 0
    for e in events(s, c, lambda e: False, 3):
        if isinstance(e, h2.events.DataReceived):
            got += e.flow_controlled_length  # never acknowledged: the window stays shut
    print(f"stalled {got}", flush=True)


def discard(port, n):
    """n streams each sending a 60 KiB body that no backend takes (the answer comes first): the
    connection window must come back for all of them."""
    s, c = connect(port)
    events(s, c, lambda e: isinstance(e, h2.events.RemoteSettingsChanged), 5)
    body = b"z" * 60000
    statuses = {}
    for i in range(n):
        sid = 1 + 2 * i
        c.send_headers(sid, request("/", "POST", [("content-length", str(len(body)))]))
        sent = 0
        end = time.monotonic() + 10
        while sent < len(body):
            room = min(c.local_flow_control_window(sid), c.max_outbound_frame_size, len(body) - sent)
            if room > 0:
                c.send_data(sid, body[sent:sent + room], end_stream=sent + room == len(body))
                sent += room
                s.sendall(c.data_to_send())
                continue
            if time.monotonic() > end:
                print(f"stalled at stream {i} of {n}", flush=True)
                return
            for e in events(s, c, lambda e: isinstance(e, h2.events.WindowUpdated), 1):
                if isinstance(e, h2.events.ResponseReceived):
                    statuses[dict(e.headers)[":status"]] = statuses.get(dict(e.headers)[":status"], 0) + 1
        # Its answer (and the stream's end), so streams do not pile up open on our side.
        for e in events(s, c, lambda e: isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset)) and e.stream_id == sid, 5):
            if isinstance(e, h2.events.ResponseReceived):
                statuses[dict(e.headers)[":status"]] = statuses.get(dict(e.headers)[":status"], 0) + 1
    print(f"sent {n} " + " ".join(f"{k}:{v}" for k, v in sorted(statuses.items())), flush=True)


def main():
    mode, port, args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    {"rapidreset": lambda: rapidreset(port, int(args[0])),
     "continuation": lambda: continuation(port, int(args[0])),
     "bigheaders": lambda: bigheaders(port, int(args[0])),
     "clmismatch": lambda: clmismatch(port),
     "pseudo": lambda: pseudo(port, args[0]),
     "mixed": lambda: mixed(port, args[0], args[1]),
     "stall": lambda: stall(port, args[0]),
     "discard": lambda: discard(port, int(args[0]))}[mode]()


if __name__ == "__main__":
    main()
