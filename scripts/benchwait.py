#!/usr/bin/env python3
"""What scripts/bench.sh waits with, so that nothing polls the nodes by starting a process
per poll while they are timed. Each mode waits until every target is there, then prints
one Unix time per target in the order given; exit status 1 (naming the targets still
waiting) if the timeout passes first.

    benchwait.py log --timeout SECS --message MSG [--where KEY=VALUE ...] LOG [LOG ...]
        the timestamp of the first line of each JSON log (`minichain node --log-format
        json`) with that message and fields, by the node's own clock; the logs' new lines
        are read every 50 ms.

    benchwait.py height --timeout SECS --height H PORT [PORT ...]
        when each node's GET /status first showed height H or more, asked every 50 ms over
        one kept-alive connection per node (a node catching up logs its blocks at debug
        level only, so its log cannot tell).

    benchwait.py mempool --timeout SECS --size N PORT [PORT ...]
        when each node's GET /status first showed N or more transactions in its mempool
        (the transactions of the next block were gossiped to every node).

    benchwait.py settled --timeout SECS --quiet SECS PORT [PORT ...]
        when no node's peer count (GET /status, every 250 ms, kept-alive connections)
        has changed for --quiet seconds: a network of fresh nodes dials most of its
        peers in one wave once discovery answers, and a block sent during that wave
        measures the wave's handshakes, not propagation. Prints one time.
"""
import argparse
import datetime
import http.client
import json
import sys
import time


def wait_all(targets, check, timeout, what):
    """Calls check(target) for each target not yet done, every 50 ms, until each has
    returned a time; returns those times in order."""
    done = {}
    deadline = time.monotonic() + timeout
    while True:
        for t in targets:
            if t not in done:
                at = check(t)
                if at is not None:
                    done[t] = at
        if len(done) == len(targets):
            return [done[t] for t in targets]
        if time.monotonic() > deadline:
            waiting = ", ".join(str(t) for t in targets if t not in done)
            sys.exit(f"benchwait: timed out after {timeout:.0f} s waiting for {what}: {waiting}")
        time.sleep(0.05)


def log_mode(a):
    want = dict(w.split("=", 1) for w in a.where)
    offsets = {log: 0 for log in a.logs}
    partial = {log: "" for log in a.logs}

    def check(log):
        try:
            with open(log, encoding="utf-8", errors="replace") as f:
                f.seek(offsets[log])
                chunk = f.read()
                offsets[log] = f.tell()
        except FileNotFoundError:
            return None
        lines = (partial[log] + chunk).split("\n")
        partial[log] = lines.pop()  # an unfinished last line waits for the rest
        for line in lines:
            try:
                v = json.loads(line)
            except ValueError:
                continue
            if v.get("message") == a.message and all(str(v.get(k)) == x for k, x in want.items()):
                return datetime.datetime.fromisoformat(v["timestamp"].replace("Z", "+00:00")).timestamp()
        return None

    return wait_all(a.logs, check, a.timeout, f"'{a.message}' {want}")


class Statuses:
    """GET /status of nodes over one kept-alive connection each."""

    def __init__(self):
        self.conns = {}

    def get(self, port):
        """The node's status, or None if it cannot answer now (not up yet, or the
        connection dropped: the next call reconnects)."""
        try:
            conn = self.conns.get(port) or http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            self.conns[port] = conn
            conn.request("GET", "/status")
            return json.loads(conn.getresponse().read())
        except (OSError, http.client.HTTPException, ValueError):
            self.conns.pop(port, None)
            return None


def status_at_least(ports, field, value, timeout, what):
    """When each node's GET /status first showed `field` at `value` or more."""
    statuses = Statuses()

    def check(port):
        status = statuses.get(port)
        return time.time() if status and status.get(field, -1) >= value else None

    return wait_all(ports, check, timeout, what)


def height_mode(a):
    return status_at_least(a.ports, "height", a.height, a.timeout, f"height {a.height} at ports")


def mempool_mode(a):
    what = f"{a.size} mempool transactions at ports"
    return status_at_least(a.ports, "mempool_size", a.size, a.timeout, what)


def settled_mode(a):
    statuses = Statuses()
    deadline = time.monotonic() + a.timeout
    last, since = None, time.monotonic()
    while True:
        now = [(statuses.get(p) or {}).get("peer_count") for p in a.ports]
        if now != last:
            last, since = now, time.monotonic()
        elif None not in now and time.monotonic() - since >= a.quiet:
            return [time.time()]
        if time.monotonic() > deadline:
            sys.exit(f"benchwait: peer counts still changing after {a.timeout:.0f} s: {now}")
        time.sleep(0.25)


def main():
    ap = argparse.ArgumentParser()
    modes = ap.add_subparsers(dest="mode", required=True)
    log = modes.add_parser("log")
    log.add_argument("--timeout", type=float, required=True)
    log.add_argument("--message", required=True)
    log.add_argument("--where", action="append", default=[], metavar="KEY=VALUE")
    log.add_argument("logs", nargs="+")
    height = modes.add_parser("height")
    height.add_argument("--timeout", type=float, required=True)
    height.add_argument("--height", type=int, required=True)
    height.add_argument("ports", nargs="+", type=int)
    mempool = modes.add_parser("mempool")
    mempool.add_argument("--timeout", type=float, required=True)
    mempool.add_argument("--size", type=int, required=True)
    mempool.add_argument("ports", nargs="+", type=int)
    settled = modes.add_parser("settled")
    settled.add_argument("--timeout", type=float, required=True)
    settled.add_argument("--quiet", type=float, required=True)
    settled.add_argument("ports", nargs="+", type=int)
    a = ap.parse_args()
    modes = {"log": log_mode, "height": height_mode, "mempool": mempool_mode, "settled": settled_mode}
    times = modes[a.mode](a)
    for t in times:
        print(f"{t:.6f}")


if __name__ == "__main__":
    main()
