#!/usr/bin/env python3
"""Waits until each of the given JSON logs (`minichain node --log-format json`) has a line
with the given message and fields, then prints that line's timestamp as Unix seconds, one
line per log in the order given: scripts/bench.sh times start-up and a devnet's first
block by the node's own clock with it (one process that reads the logs' new lines every
50 ms and starts nothing).

    logwait.py --timeout SECS --message MSG [--where KEY=VALUE ...] LOG [LOG ...]

Exit status 1 (naming the logs still waiting) if the timeout passes first."""
import argparse
import datetime
import json
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--timeout", type=float, required=True)
    ap.add_argument("--message", required=True)
    ap.add_argument("--where", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("logs", nargs="+")
    a = ap.parse_args()
    want = dict(w.split("=", 1) for w in a.where)
    offsets = {log: 0 for log in a.logs}
    partial = {log: "" for log in a.logs}
    found = {}
    deadline = time.monotonic() + a.timeout
    while len(found) < len(a.logs):
        for log in a.logs:
            if log in found:
                continue
            try:
                with open(log, encoding="utf-8", errors="replace") as f:
                    f.seek(offsets[log])
                    chunk = f.read()
                    offsets[log] = f.tell()
            except FileNotFoundError:
                continue
            lines = (partial[log] + chunk).split("\n")
            partial[log] = lines.pop()  # an unfinished last line waits for the rest
            for line in lines:
                try:
                    v = json.loads(line)
                except ValueError:
                    continue
                if v.get("message") != a.message:
                    continue
                if all(str(v.get(k)) == val for k, val in want.items()):
                    ts = v["timestamp"].replace("Z", "+00:00")
                    found[log] = datetime.datetime.fromisoformat(ts).timestamp()
                    break
        if len(found) < len(a.logs):
            if time.monotonic() > deadline:
                missing = [log for log in a.logs if log not in found]
                print(f"logwait: timed out after {a.timeout:.0f} s waiting for "
                      f"'{a.message}' {want} in {', '.join(missing)}", file=sys.stderr)
                sys.exit(1)
            time.sleep(0.05)
    for log in a.logs:
        print(f"{found[log]:.6f}")


if __name__ == "__main__":
    main()
