#!/usr/bin/env python3
"""A TCP relay that delays every byte sent to the server by a fixed time, as a network
with that one-way delay would (netem-style: a delay line, not a rate limit, so bytes in
flight overlap). Each HTTP request thus waits `delay` more before the server sees it.

Usage: latency-proxy.py LISTEN_PORT TARGET_PORT [DELAY_MS, default 30]
"""
import asyncio
import sys
import time


async def delayed(reader, writer, delay):
    """Copy reader to writer, each piece released `delay` seconds after it arrived."""
    queue = asyncio.Queue()

    async def pump():
        while True:
            data = await reader.read(1 << 20)
            await queue.put((time.monotonic() + delay, data))
            if not data:
                return

    task = asyncio.create_task(pump())
    try:
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        task.cancel()
        writer.close()


async def plain(reader, writer):
    try:
        while data := await reader.read(1 << 20):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def main():
    listen, target = int(sys.argv[1]), int(sys.argv[2])
    delay = (float(sys.argv[3]) if len(sys.argv) > 3 else 30.0) / 1000

    async def handle(cr, cw):
        try:
            sr, sw = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            cw.close()
            return
        await asyncio.gather(delayed(cr, sw, delay), plain(sr, cw))

    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
