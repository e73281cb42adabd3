#!/usr/bin/env python3
"""Real WebSocket peers (the `websockets` package, 13 or later) for the tunnel tests.

  ws_peer.py server                 echo server on 127.0.0.1:0; prints "ws listening on 127.0.0.1:PORT".
                                    /refuse answers 403; /hello sends "hello" first, then echoes.
  ws_peer.py echo URL N SIZE        N messages of SIZE bytes (text if SIZE < 0: -SIZE chars) echoed; "echo ok N"
  ws_peer.py idle URL N SECONDS     N connections held SECONDS without pings; "ready N", then "idle ok N"
                                    when every one still echoes after the wait
  ws_peer.py ping URL EVERY SECONDS one connection pinging every EVERY s for SECONDS; "ping ok" if it
                                    still echoes at the end
  ws_peer.py silent URL SECONDS     one connection with no pings; "connected", then "closed after T"
                                    when the other side closes it, "open" if it lasts SECONDS
  ws_peer.py refused URL            expects the handshake refused; "refused STATUS"
  ws_peer.py hello URL              expects "hello" first; "hello ok"
  ws_peer.py vanish URL             connects, sends one message, then exits without a close frame
Every wait is bounded; TLS URLs (wss://) are not verified (the tests' certificate is self-signed).
"""
import asyncio, os, ssl, sys, time

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed, InvalidStatus


def tls(url):
    if not url.startswith("wss://"):
        return None
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


def dial(url, **kw):
    return connect(url, ssl=tls(url), open_timeout=30, close_timeout=5, max_size=None, **kw)


async def server():
    def process_request(connection, request):
        if request.path == "/refuse":
            return connection.respond(403, "no upgrade here\n")
        return None

    async def handler(ws):
        try:
            if ws.request.path == "/hello":
                await ws.send("hello")
            async for m in ws:
                await ws.send(m)
        except ConnectionClosed:
            pass

    async with serve(handler, "127.0.0.1", 0, process_request=process_request, max_size=None,
                     ping_interval=None, compression=None) as s:
        port = s.sockets[0].getsockname()[1]
        print(f"ws listening on 127.0.0.1:{port}", flush=True)
        await asyncio.Future()


async def echo(url, n, size):
    async with dial(url, ping_interval=None, compression=None) as ws:
        for i in range(n):
            m = ("x" * -size) if size < 0 else os.urandom(size)
            await ws.send(m)
            back = await asyncio.wait_for(ws.recv(), 60)
            assert back == m, f"message {i} came back different"
    print(f"echo ok {n}", flush=True)


async def idle(url, n, seconds):
    conns = []
    sem = asyncio.Semaphore(200)

    async def one():
        async with sem:
            conns.append(await dial(url, ping_interval=None, compression=None))

    await asyncio.gather(*(one() for _ in range(n)))
    print(f"ready {len(conns)}", flush=True)
    await asyncio.sleep(seconds)
    ok = 0
    for ws in conns:
        await ws.send("still")
        if await asyncio.wait_for(ws.recv(), 30) == "still":
            ok += 1
    print(f"idle ok {ok}", flush=True)
    await asyncio.gather(*(ws.close() for ws in conns))


async def ping(url, every, seconds):
    async with dial(url, ping_interval=every, ping_timeout=every * 4, compression=None) as ws:
        await asyncio.sleep(seconds)
        await ws.send("after")
        assert await asyncio.wait_for(ws.recv(), 10) == "after"
    print("ping ok", flush=True)


async def silent(url, seconds):
    async with dial(url, ping_interval=None, compression=None) as ws:
        print("connected", flush=True)
        start = time.monotonic()
        try:
            await asyncio.wait_for(ws.recv(), seconds)
        except ConnectionClosed:
            print(f"closed after {time.monotonic() - start:.2f}", flush=True)
            return
        except asyncio.TimeoutError:
            print("open", flush=True)


async def refused(url):
    try:
        async with dial(url):
            print("upgraded", flush=True)
    except InvalidStatus as e:
        print(f"refused {e.response.status_code}", flush=True)


async def hello(url):
    async with dial(url, ping_interval=None) as ws:
        assert await asyncio.wait_for(ws.recv(), 10) == "hello"
        await ws.send("back")
        assert await asyncio.wait_for(ws.recv(), 10) == "back"
    print("hello ok", flush=True)


async def vanish(url):
    ws = await dial(url, ping_interval=None)
    await ws.send("bye")
    await asyncio.wait_for(ws.recv(), 10)
    print("vanishing", flush=True)
    os._exit(0)  # no close frame, no FIN handshake of ours: the kernel closes the socket


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "server":
        run = server()
    elif mode == "echo":
        run = echo(args[0], int(args[1]), int(args[2]))
    elif mode == "idle":
        run = idle(args[0], int(args[1]), float(args[2]))
    elif mode == "ping":
        run = ping(args[0], float(args[1]), float(args[2]))
    elif mode == "silent":
        run = silent(args[0], float(args[1]))
    elif mode == "refused":
        run = refused(args[0])
    elif mode == "hello":
        run = hello(args[0])
    elif mode == "vanish":
        run = vanish(args[0])
    else:
        sys.exit(f"unknown mode {mode}")
    asyncio.run(asyncio.wait_for(run, 600))


if __name__ == "__main__":
    main()
