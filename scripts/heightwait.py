#!/usr/bin/env python3
"""Waits until every node at the given API ports reports at least the given height in
GET /status, and prints, one line per port in the order given, the Unix time its answer
first did. One process with one kept-alive HTTP connection per node, asking every 50 ms:
scripts/bench.sh times sync with it without starting a process per poll.

    heightwait.py --timeout SECS --height H PORT [PORT ...]

Exit status 1 (naming the ports still behind) if the timeout passes first."""
import argparse
import http.client
import json
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--timeout", type=float, required=True)
    ap.add_argument("--height", type=int, required=True)
    ap.add_argument("ports", nargs="+", type=int)
    a = ap.parse_args()
    conns = {}
    reached = {}
    deadline = time.monotonic() + a.timeout
    while len(reached) < len(a.ports):
        for port in a.ports:
            if port in reached:
                continue
            try:
                conn = conns.get(port) or http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conns[port] = conn
                conn.request("GET", "/status")
                height = json.loads(conn.getresponse().read())["height"]
            except (OSError, http.client.HTTPException, ValueError, KeyError):
                conns.pop(port, None)  # not up yet, or the connection dropped: reconnect
                continue
            if height >= a.height:
                reached[port] = time.time()
        if len(reached) < len(a.ports):
            if time.monotonic() > deadline:
                behind = [str(p) for p in a.ports if p not in reached]
                print(f"heightwait: timed out after {a.timeout:.0f} s; behind height "
                      f"{a.height}: ports {', '.join(behind)}", file=sys.stderr)
                sys.exit(1)
            time.sleep(0.05)
    for port in a.ports:
        print(f"{reached[port]:.6f}")


if __name__ == "__main__":
    main()
