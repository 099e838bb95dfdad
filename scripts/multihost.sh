#!/usr/bin/env bash
# A real multi-host minichain network on one machine: every node in its own Linux network
# namespace with its own address (10.77.0.x on a bridge), joined through a bootstrap
# address that is not loopback. It proves that the nodes converge, that a host whose link
# is cut falls behind, and that it catches up once the link is back, and that a host
# holding 1,000 idle TCP connections to host 1 (scripts/hold-idle.py) does not keep a
# restarted host 3 from joining host 1 and syncing; then it tears everything down. Needs
# root, iproute2 and python3.
#
#   scripts/multihost.sh [--hosts N] [--bin PATH] [--keep-logs DIR]
#
# Exit codes: 0 all checks passed, 1 a check failed, 77 namespaces cannot be made here.
set -euo pipefail

hosts=3
bin=${MINICHAIN_BIN:-}
logs=""
while [[ $# -gt 0 ]]; do
    case $1 in
        --hosts) hosts=$2; shift 2 ;;
        --bin) bin=$2; shift 2 ;;
        --keep-logs) logs=$2; shift 2 ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "multihost.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
[[ $hosts =~ ^[3-9]$ ]] || { echo "multihost.sh: --hosts takes 3 to 9" >&2; exit 2; }
if [[ $(id -u) != 0 ]] || ! command -v ip > /dev/null; then
    echo "multihost.sh: skipped: needs root and iproute2 (ip)" >&2
    exit 77
fi
root=$(cd "$(dirname "$0")/.." && pwd)
if [[ -z $bin ]]; then
    (cd "$root" && cargo build --release --quiet)
    bin=$root/target/release/minichain
fi

tag="mc$$"           # unique per run: parallel runs never collide
sw="${tag}-sw"
work=$(mktemp -d)
pids=()
say() { echo "[multihost] $*"; }

teardown() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    # Whatever still runs inside a namespace would keep it alive after `ip netns del`.
    for ((i = 1; i <= hosts; i++)); do
        ip netns pids "${tag}-h$i" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
        ip netns del "${tag}-h$i" 2>/dev/null || true
    done
    ip netns del "$sw" 2>/dev/null || true
    if [[ -n $logs ]]; then mkdir -p "$logs" && cp "$work"/*.log "$logs"/ 2>/dev/null || true; fi
    rm -rf "$work"
    if ip netns list | grep -q "^${tag}-"; then echo "[multihost] teardown left namespaces behind" >&2; exit 1; fi
}
trap teardown EXIT

if ! ip netns add "$sw" 2> "$work/err"; then
    echo "multihost.sh: skipped: cannot create network namespaces here: $(cat "$work/err")" >&2
    exit 77
fi
ip -n "$sw" link add br0 type bridge
ip -n "$sw" link set br0 up
for ((i = 1; i <= hosts; i++)); do
    ns="${tag}-h$i"
    ip netns add "$ns"
    ip link add "${tag}v$i" type veth peer name "${tag}p$i"
    ip link set "${tag}v$i" netns "$ns" name eth0
    ip link set "${tag}p$i" netns "$sw"
    ip -n "$sw" link set "${tag}p$i" master br0 up
    ip -n "$ns" addr add "10.77.0.$i/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
done
say "$hosts hosts on a bridge: 10.77.0.1 .. 10.77.0.$hosts"

in_host() { local i=$1; shift; ip netns exec "${tag}-h$i" "$@"; }
cli() { local i=$1; shift; in_host "$i" "$bin" "$@" --network regtest --rpc 127.0.0.1:18443 --data-dir "$work/h$i"; }
height() { cli "$1" status --json 2> /dev/null | sed -nE 's/.*"height": ?([0-9]+).*/\1/p'; }

wait_until() {   # wait_until SECONDS DESCRIPTION COMMAND...
    local limit=$1 what=$2; shift 2
    local deadline=$((SECONDS + limit))
    until "$@"; do
        if ((SECONDS >= deadline)); then say "FAILED: $what (after ${limit}s)"; return 1; fi
        sleep 0.3
    done
    say "ok: $what"
}
all_at() { local h=$1; for ((i = 1; i <= hosts; i++)); do [[ $(height "$i") == "$h" ]] || return 1; done; }
host_at() { [[ $(height "$1") == "$2" ]]; }
peers_of() { cli "$1" status --json 2> /dev/null | sed -nE 's/.*"peer_count": ?([0-9]+).*/\1/p'; }
lost_host() {   # no host still counts the cut-off host among its peers
    for ((i = 1; i < hosts; i++)); do [[ $(peers_of "$i") -le $((hosts - 2)) ]] || return 1; done
}

for ((i = 1; i <= hosts; i++)); do
    args=(node --network regtest --data-dir "$work/h$i" --listen /ip4/0.0.0.0/tcp/18444 --rpc 127.0.0.1:18443
          --external-addr "/ip4/10.77.0.$i/tcp/18444")
    ((i > 1)) && args+=(--bootstrap 10.77.0.1:18444)
    # `ip netns exec` execs the node, so $! is the node itself (not a wrapper shell).
    NO_COLOR=1 ip netns exec "${tag}-h$i" "$bin" "${args[@]}" > "$work/h$i.log" 2>&1 &
    pids+=($!)
    ((i == 1)) && wait_until 30 "host 1 answering" host_at 1 0
done
wait_until 60 "every host answering" all_at 0

cli 1 mine --blocks 20 > /dev/null
wait_until 60 "all $hosts hosts converged at height 20" all_at 20

last=$hosts
ip -n "$sw" link set "${tag}p$last" down
say "link of host $last cut"
# Wait until the others dropped their connections to it (failed pings), so that what it
# misses is never retransmitted by TCP: it must reconnect and sync to catch up.
wait_until 120 "the other hosts noticed host $last is gone" lost_host
cli 1 mine --blocks 15 > /dev/null
for ((i = 1; i < last; i++)); do wait_until 60 "host $i at height 35" host_at "$i" 35; done
[[ $(height "$last") == 20 ]] || { say "FAILED: host $last moved while cut off"; exit 1; }
say "ok: host $last still at height 20 while cut off"

ip -n "$sw" link set "${tag}p$last" up
say "link of host $last restored"
wait_until 120 "host $last caught up to height 35" host_at "$last" 35

# Inbound slots cannot be monopolised: host 2 holds 1,000 idle TCP connections to host 1
# (never handshaking, reopening each one host 1 closes) while host 3 restarts with an empty
# data dir and host 1 as its only bootstrap: it must still get in and sync.
holder_log="$work/hold.log"
in_host 2 bash -c 'ulimit -n 4096; exec python3 "$0" 10.77.0.1 18444 1000 90' \
    "$root/scripts/hold-idle.py" > "$holder_log" 2>&1 &
holder=$!
pids+=("$holder")
say "host 2 holds 1000 idle connections to host 1"
sleep 3   # the point: the idle connections are there before host 3 comes
kill -TERM "${pids[$((last - 1))]}"
wait "${pids[$((last - 1))]}" 2>/dev/null || true
rm -rf "$work/h$last"
NO_COLOR=1 ip netns exec "${tag}-h$last" "$bin" node --network regtest --data-dir "$work/h$last" \
    --listen /ip4/0.0.0.0/tcp/18444 --rpc 127.0.0.1:18443 \
    --external-addr "/ip4/10.77.0.$last/tcp/18444" --bootstrap 10.77.0.1:18444 \
    > "$work/h$last-again.log" 2>&1 &
pids+=($!)
joined_host_1() { cli "$last" peers --json 2> /dev/null | grep -q '/ip4/10.77.0.1/'; }
wait_until 60 "host $last joined host 1 during the flood" joined_host_1
wait_until 60 "host $last synced to height 35 during the flood" host_at "$last" 35
kill -TERM "$holder" 2>/dev/null || true
wait "$holder" 2>/dev/null || true
say "ok: the flood $(tail -n1 "$holder_log")"
say "all checks passed"
