#!/usr/bin/env python3
"""Many real TLS clients at once (Python's ssl module, i.e. OpenSSL), for the TLS load tests.

  tls_clients.py concurrent PORT N PATH   N connections at once, one GET each; prints {"status": count}
  tls_clients.py idle PORT N [SECONDS]    N connections, one GET each, then held open: prints
                                          "ready OK" and holds them SECONDS (default 0), or until killed
Each run is bounded: connections time out after 60 s.
"""
import asyncio, json, ssl, sys


def context():
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    c.set_alpn_protocols(["http/1.1"])
    return c


async def one(port, path, ctx, keep):
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port, ssl=ctx), 60)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    if length:
        await asyncio.wait_for(reader.readexactly(length), 60)
    if keep is not None:
        keep.append(writer)
    else:
        writer.close()
    return status


async def main():
    mode, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    ctx = context()
    if mode == "concurrent":
        results = await asyncio.gather(*(one(port, sys.argv[4], ctx, None) for _ in range(n)), return_exceptions=True)
        counts = {}
        for r in results:
            k = str(r) if isinstance(r, int) else type(r).__name__
            counts[k] = counts.get(k, 0) + 1
        print(json.dumps(counts), flush=True)
    else:
        held = []
        sem = asyncio.Semaphore(200)

        async def opened():
            async with sem:
                return await one(port, "/", ctx, held)
        results = await asyncio.gather(*(opened() for _ in range(n)), return_exceptions=True)
        ok = sum(1 for r in results if r == 200)
        print(f"ready {ok}", flush=True)
        await asyncio.sleep(float(sys.argv[4]) if len(sys.argv) > 4 else 0)
        for w in held:
            w.close()


asyncio.run(main())
