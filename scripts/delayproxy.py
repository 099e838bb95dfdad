#!/usr/bin/env python3
"""A TCP proxy that delays every byte by a fixed time in each direction, like a long link.

    delayproxy.py --listen 127.0.0.1:PORT --to 127.0.0.1:PORT --delay-ms 50

Each chunk read from one side is written to the other side `--delay-ms` after it was read,
in order, so a round trip through the proxy takes twice the delay. Bandwidth is not
limited (netem does not exist on this machine; this stands in for its `delay`). Used by
scripts/bench.sh to sync across a 100 ms round trip.
"""

import argparse
import asyncio
import time


def parse_addr(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


async def pipe(reader, writer, delay):
    """Copies reader to writer, each chunk `delay` seconds after it arrived."""
    queue = asyncio.Queue()

    async def read():
        try:
            while chunk := await reader.read(1 << 16):
                await queue.put((time.monotonic() + delay, chunk))
        except (ConnectionError, OSError):
            pass
        await queue.put((time.monotonic() + delay, None))

    async def write():
        try:
            while True:
                due, chunk = await queue.get()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if chunk is None:
                    break
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    await asyncio.gather(read(), write())


async def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", required=True, help="HOST:PORT to accept on")
    ap.add_argument("--to", required=True, help="HOST:PORT to forward to")
    ap.add_argument("--delay-ms", type=float, required=True, help="one-way delay")
    args = ap.parse_args()
    delay = args.delay_ms / 1000
    to_host, to_port = parse_addr(args.to)

    async def handle(client_reader, client_writer):
        try:
            up_reader, up_writer = await asyncio.open_connection(to_host, to_port)
        except OSError as e:
            print(f"cannot reach {args.to}: {e}", flush=True)
            client_writer.close()
            return
        await asyncio.gather(
            pipe(client_reader, up_writer, delay), pipe(up_reader, client_writer, delay)
        )

    host, port = parse_addr(args.listen)
    server = await asyncio.start_server(handle, host, port)
    print(f"delaying {args.listen} -> {args.to} by {args.delay_ms} ms each way", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
