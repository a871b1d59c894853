#!/usr/bin/env python3
"""A TCP relay that delays every byte sent to the server by a fixed time, as a network
with that one-way delay would (netem-style: a delay line, not a rate limit, so bytes in
flight overlap). Each HTTP request thus waits `delay` more before the server sees it.
Answers flow back undelayed through splice(2), so the relay costs little CPU where the
data is (this machine's kernel has no netem to do it for us).

Usage: latency-proxy.py LISTEN_PORT TARGET_PORT [DELAY_MS, default 30]
"""
import os
import queue
import socket
import sys
import threading
import time

CHUNK = 1 << 20


def delayed(src, dst, delay):
    """Copy src to dst, each piece released `delay` seconds after it arrived."""
    line = queue.Queue()

    def pump():
        try:
            while data := src.recv(CHUNK):
                line.put((time.monotonic() + delay, data))
        except OSError:
            pass
        line.put((time.monotonic() + delay, b""))

    threading.Thread(target=pump, daemon=True).start()
    try:
        while True:
            due, data = line.get()
            if (wait := due - time.monotonic()) > 0:
                time.sleep(wait)
            if not data:
                break
            dst.sendall(data)
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def spliced(src, dst):
    """Copy src to dst in the kernel."""
    r, w = os.pipe()
    try:
        while True:
            n = os.splice(src.fileno(), w, CHUNK)
            if n == 0:
                break
            while n:
                n -= os.splice(r, dst.fileno(), n)
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    finally:
        os.close(r)
        os.close(w)


def main():
    listen, target = int(sys.argv[1]), int(sys.argv[2])
    delay = (float(sys.argv[3]) if len(sys.argv) > 3 else 30.0) / 1000
    server = socket.create_server(("127.0.0.1", listen))
    while True:
        client, _ = server.accept()
        try:
            upstream = socket.create_connection(("127.0.0.1", target))
        except OSError:
            client.close()
            continue
        for s in (client, upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=delayed, args=(client, upstream, delay), daemon=True).start()
        threading.Thread(target=spliced, args=(upstream, client), daemon=True).start()


if __name__ == "__main__":
    main()
