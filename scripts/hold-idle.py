#!/usr/bin/env python3
"""Holds N idle TCP connections to HOST:PORT for SECS seconds, never sending a byte, and
opens a new one for each that the other side closes: the slot-exhaustion attack that
scripts/multihost.sh runs against a node. Prints how many connections it opened."""
import selectors
import signal
import socket
import sys
import time

host, port, n, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
sel = selectors.DefaultSelector()
opened = 0


def open_one():
    global opened
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    if s.connect_ex((host, port)) not in (0, 115):  # 115: EINPROGRESS
        s.close()
        return
    sel.register(s, selectors.EVENT_READ)
    opened += 1


end = time.time() + secs


def stop(*_):
    global end
    end = 0


signal.signal(signal.SIGTERM, stop)
for _ in range(n):
    open_one()
last_report = 0.0
while time.time() < end:
    if time.time() - last_report >= 1:
        last_report = time.time()
        print(f"opened {opened} connections, {len(sel.get_map())} open now", flush=True)
    for key, _ in sel.select(timeout=0.2):
        s = key.fileobj
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        if not data:  # closed by the node: take its place again
            sel.unregister(s)
            s.close()
            open_one()
print(f"opened {opened} connections, {len(sel.get_map())} open at the end", flush=True)
