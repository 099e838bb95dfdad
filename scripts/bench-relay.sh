#!/usr/bin/env bash
# Block relay between real node processes on loopback: N regtest nodes bootstrapped from
# node 0; each round sends T transactions through node 0 (gossiped to every mempool
# first, as between blocks), then node 0 mines them into a block. One network relays
# compact blocks, another runs with --no-compact-blocks (whole blocks, as before); the
# whole network also runs the 100-transaction rounds of the earlier benchmark.
# Prints a markdown table, then one JSON object on its last line.
#
#   scripts/bench-relay.sh [--nodes N] [--txs T] [--rounds R]   (default 30, 1000, 3)
set -euo pipefail
nodes=30 txs=1000 rounds=3
while [[ $# -gt 0 ]]; do
    case $1 in
        --nodes) nodes=${2:?}; shift 2 ;;
        --txs) txs=${2:?}; shift 2 ;;
        --rounds) rounds=${2:?}; shift 2 ;;
        *) echo "usage: scripts/bench-relay.sh [--nodes N] [--txs T] [--rounds R]" >&2; exit 2 ;;
    esac
done
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
say() { echo "[relay] $*" >&2; }
[[ -x $root/target/release/minichain ]] || cargo build --release --quiet
bin=$root/target/release/minichain
source "$root/scripts/bench-lib.sh"

# sums PORT...: the relay byte counters summed over the nodes, as JSON (gossipsub's wire
# counters of the two block topics, duplicates included, and the sync protocol's frames,
# compact block relay's among them).
sums() {
    python3 - "$@" <<'PY'
import json, re, sys, urllib.request
total = {"blocks": 0.0, "headers": 0.0, "sync": 0.0, "sync_compact": 0.0}
for port in sys.argv[1:]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    for line in text.splitlines():
        m = re.match(r'libp2p_gossipsub_topic_msg_recv_bytes_unfiltered_total\{hash="minichain/regtest/(blocks|headers)"\} (\S+)', line)
        if m:
            total[m.group(1)] += float(m.group(2))
        m = re.match(r'minichain_p2p_bytes_total\{direction="received",protocol="(sync|sync_compact)"\} (\S+)', line)
        if m:
            total[m.group(1)] += float(m.group(2))
print(json.dumps(total))
PY
}

# network NAME [node args...]: starts N nodes, funds node 0's wallet, waits until the
# connections settle.
network() {
    local name=$1; shift
    read -r -a ports <<< "$(free_ports $((2 * nodes)))"
    start_node "$name-0" "${ports[0]}" "${ports[1]}" "$@"
    logwait 30 "HTTP API listening" "$work/$name-0.log" > /dev/null
    local boot
    boot=$(status "${ports[0]}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["listen_addrs"][0])')
    for ((i = 1; i < nodes; i++)); do
        start_node "$name-$i" "${ports[$((2 * i))]}" "${ports[$((2 * i + 1))]}" --bootstrap "$boot" "$@"
    done
    rpcs=()
    for ((i = 0; i < nodes; i++)); do rpcs+=("${ports[$((2 * i))]}"); done
    "$bin" wallet new --network regtest --no-passphrase --wallet "$work/$name.wallet" > "$work/$name.addr" 2> "$work/$name.wallet.log"
    cli "$name" mine --blocks 110 --to "$(cat "$work/$name.addr")" > /dev/null
    heightwait 300 110 "${rpcs[@]}" > /dev/null
    python3 "$root/scripts/benchwait.py" settled --timeout 180 --quiet 11 "${rpcs[@]}" > /dev/null \
        || { say "FAILED: the $name network's connections did not settle"; exit 1; }
}
cli() { local name=$1; shift; "$bin" "$@" --network regtest --rpc "127.0.0.1:${rpcs[0]}" --data-dir "$work/$name-0"; }

# rounds NAME TXS COUNT: COUNT rounds of a TXS-transaction block; appends the latencies
# (ms, every node but node 0) to $work/NAME-TXS.lat and the relay bytes per node per block
# to $work/NAME-TXS.bytes.
rounds() {
    local name=$1 n=$2 count=$3 r
    local addr; addr=$(cat "$work/$name.addr")
    for ((r = 0; r < count; r++)); do
        for ((t = 0; t < n; t++)); do
            cli "$name" send --wallet "$work/$name.wallet" --to "$addr" --amount 0.001 --fee 0.0001 > /dev/null
        done
        python3 "$root/scripts/benchwait.py" mempool --timeout 120 --size "$n" "${rpcs[@]}" > /dev/null \
            || { say "FAILED: the transactions did not reach every mempool"; exit 1; }
        local before after height hash
        before=$(sums "${rpcs[@]}")
        height=$(status "${rpcs[0]}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["height"])')
        hash=$(cli "$name" mine --blocks 1 | head -n1)
        heightwait 120 $((height + 1)) "${rpcs[@]}" > /dev/null
        sleep 1  # the last duplicates and IDONTWANTs land
        after=$(sums "${rpcs[@]}")
        python3 - "$work" "$name" "$nodes" "$hash" "$n" "$before" "$after" "${rpcs[0]}" <<'PY'
import datetime, json, sys, urllib.request
work, name, n, h, txs = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
before, after, port = json.loads(sys.argv[6]), json.loads(sys.argv[7]), sys.argv[8]
def connected(i):
    for line in open(f"{work}/{name}-{i}.log"):
        try: v = json.loads(line)
        except ValueError: continue
        if v.get("message") == "block connected" and v.get("hash") == h:
            return datetime.datetime.fromisoformat(v["timestamp"].replace("Z", "+00:00"))
    sys.exit(f"block {h} has no 'block connected' line in node {i}'s log")
t0 = connected(0)
with open(f"{work}/{name}-{txs}.lat", "a") as f:
    for i in range(1, n):
        f.write(f"{(connected(i) - t0).total_seconds() * 1000:.1f}\n")
size = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/blocks/{h}"))["size"]
relay = sum(after[k] - before[k] for k in after) / n
with open(f"{work}/{name}-{txs}.bytes", "a") as f:
    f.write(f"{relay} {size}\n")
PY
    done
}

stop_network() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    pids=()
}

say "compact network: $nodes processes, $rounds rounds of $txs transactions"
network compact
rounds compact "$txs" "$rounds"
stop_network
say "whole-block network (--no-compact-blocks): $rounds rounds of $txs, then of 100 transactions"
network whole --no-compact-blocks
rounds whole "$txs" "$rounds"
rounds whole 100 "$rounds"
stop_network

python3 - "$work" "$txs" "$nodes" <<'PY'
import json, sys
work, txs, nodes = sys.argv[1], sys.argv[2], int(sys.argv[3])
def stats(name, n):
    lat = sorted(float(l) for l in open(f"{work}/{name}-{n}.lat"))
    rows = [tuple(map(float, l.split())) for l in open(f"{work}/{name}-{n}.bytes")]
    relay = sum(r for r, _ in rows) / len(rows)
    size = sum(s for _, s in rows) / len(rows)
    return {"p50_ms": lat[len(lat) // 2], "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))],
            "samples": len(lat), "relay_bytes_per_node": round(relay), "block_bytes": round(size)}
out = {"nodes": nodes, "compact": stats("compact", txs), "whole": stats("whole", txs), "whole_100": stats("whole", 100)}
print("| relay | block | p50 / p99 (ms) | relay bytes per node per block | relay / block size |")
print("| --- | --- | --- | --- | --- |")
for name, key, n in [("compact", "compact", txs), ("whole", "whole", txs), ("whole", "whole_100", "100")]:
    s = out[key]
    print(f"| {name} | {n} txs, {s['block_bytes'] / 1e3:.0f} KB | {s['p50_ms']:.0f} / {s['p99_ms']:.0f} | {s['relay_bytes_per_node'] / 1e3:.1f} KB | {s['relay_bytes_per_node'] / s['block_bytes']:.3f} |")
print(json.dumps(out))
PY
