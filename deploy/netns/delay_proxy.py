#!/usr/bin/env python3
"""A TCP proxy that delays every chunk it forwards by a fixed time, in both directions, keeping order.

run.sh uses it for --delay when the kernel has no sch_netem qdisc (tc ... netem fails with "Specified qdisc kind
is unknown", e.g. in Firecracker VMs): placed on a worker host in front of the worker, it adds the delay to each
message the router sends and to each answer, so a round trip gains 2 x delay, as netem on both hosts would.
Chunks are delayed, not throttled: a chunk read at t is written at t + delay, whatever was read meanwhile.

    delay_proxy.py LISTEN_HOST:PORT TARGET_HOST:PORT DELAY_MS
"""
import asyncio
import sys
import time


async def pump(reader, writer, delay):
    queue = asyncio.Queue()

    async def read():
        while True:
            data = await reader.read(65536)
            await queue.put((time.monotonic() + delay, data))
            if not data:
                return

    async def write():
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    try:
        await asyncio.gather(read(), write())
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def main():
    if len(sys.argv) != 4:
        sys.exit("usage: delay_proxy.py LISTEN_HOST:PORT TARGET_HOST:PORT DELAY_MS")
    lhost, lport = sys.argv[1].rsplit(":", 1)
    thost, tport = sys.argv[2].rsplit(":", 1)
    delay = float(sys.argv[3]) / 1000.0

    async def handle(creader, cwriter):
        try:
            ureader, uwriter = await asyncio.open_connection(thost, int(tport))
        except OSError:
            cwriter.close()
            return
        await asyncio.gather(pump(creader, uwriter, delay), pump(ureader, cwriter, delay))

    server = await asyncio.start_server(handle, lhost, int(lport))
    print(f"delay_proxy {sys.argv[1]} -> {sys.argv[2]} +{sys.argv[3]} ms each way", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
