#!/usr/bin/env bash
# A real multi-host minichain network on one machine: every node in its own Linux network
# namespace with its own address (10.77.0.x on a bridge), joined through a bootstrap
# address that is not loopback. It proves that hosts started before their bootstrap peer
# join it once it is up, that the nodes converge, that a host whose link is cut falls
# behind and catches up once the link is back, that a host holding 1,000 idle TCP
# connections to host 1 (scripts/hold-idle.py) does not keep a restarted host 3 from
# joining host 1 and syncing, that a node killed with SIGKILL and restarted at once keeps
# gossiping both ways, and that after every node stopped the others come back without
# --bootstrap from their peer books while host 1 stays down; then it tears everything
# down. Needs root, iproute2 and python3.
#
# --nat: hosts 1 and 2 on the bridge, hosts 3 and 4 each behind its own NAT router
# (nftables masquerade, 192.168.<i>.2 inside). Hosts 3 and 4 bootstrap from host 1 only.
# Proves the reachability verdicts (public hosts "reachable at", NATed ones "not
# reachable"), relay slots on the public hosts, blocks mined behind NAT reaching everyone,
# hosts 3 and 4 connected to each other directly through a hole punch (DCUtR), and blocks
# flowing between them after host 1 stops. Needs nftables too.
#
#   scripts/multihost.sh [--nat] [--hosts N] [--bin PATH] [--keep-logs DIR]
#
# Exit codes: 0 all checks passed, 1 a check failed, 77 namespaces cannot be made here.
set -euo pipefail

hosts=3
nat=0
bin=${MINICHAIN_BIN:-}
logs=""
while [[ $# -gt 0 ]]; do
    case $1 in
        --hosts) hosts=$2; shift 2 ;;
        --nat) nat=1; shift ;;
        --bin) bin=$2; shift 2 ;;
        --keep-logs) logs=$2; shift 2 ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "multihost.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
[[ $hosts =~ ^[3-9]$ ]] || { echo "multihost.sh: --hosts takes 3 to 9" >&2; exit 2; }
((nat)) && hosts=4
if [[ $(id -u) != 0 ]] || ! command -v ip > /dev/null; then
    echo "multihost.sh: skipped: needs root and iproute2 (ip)" >&2
    exit 77
fi
if ((nat)) && ! command -v nft > /dev/null; then
    echo "multihost.sh: skipped: --nat needs nftables (nft)" >&2
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
    for ns in $(ip netns list | awk '{print $1}' | grep "^${tag}-" || true); do
        ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
        ip netns del "$ns" 2>/dev/null || true
    done
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

# uplink NS I: a veth from namespace NS (as eth0, 10.77.0.I/24) to the bridge.
uplink() {
    local ns=$1 i=$2
    ip link add "${tag}v$i" type veth peer name "${tag}p$i"
    ip link set "${tag}v$i" netns "$ns" name eth0
    ip link set "${tag}p$i" netns "$sw"
    ip -n "$sw" link set "${tag}p$i" master br0 up
    ip -n "$ns" addr add "10.77.0.$i/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
}
# natted I: host I at 192.168.I.2 behind router namespace r<I>, which is 10.77.0.I on the
# bridge and masquerades everything the host sends out (Linux keeps the source port when
# it is free, as home routers usually do).
natted() {
    local i=$1 r="${tag}-r$1" h="${tag}-h$1"
    ip netns add "$r"
    ip netns add "$h"
    uplink "$r" "$i"
    ip link add "${tag}l$i" type veth peer name "${tag}m$i"
    ip link set "${tag}l$i" netns "$r" name lan0
    ip link set "${tag}m$i" netns "$h" name eth0
    ip -n "$r" addr add "192.168.$i.1/24" dev lan0
    ip -n "$r" link set lan0 up
    ip -n "$h" addr add "192.168.$i.2/24" dev eth0
    ip -n "$h" link set eth0 up
    ip -n "$h" link set lo up
    ip -n "$h" route add default via "192.168.$i.1"
    ip netns exec "$r" sysctl -qw net.ipv4.ip_forward=1
    # As a home router does, it drops unsolicited connections to its own address; without
    # that rule Linux answers them with a reset, which kills the hole punch's half-open
    # connection on the other side (docs/operations.md, "Joining from behind NAT").
    ip netns exec "$r" nft -f - <<NFT
table ip nat {
    chain post {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "eth0" masquerade
    }
}
table ip filter {
    chain input {
        type filter hook input priority filter; policy accept;
        iifname "eth0" ct state new drop
    }
}
NFT
}
for ((i = 1; i <= hosts; i++)); do
    if ((nat && i > 2)); then
        natted "$i"
    else
        ip netns add "${tag}-h$i"
        uplink "${tag}-h$i" "$i"
    fi
done
if ((nat)); then
    say "hosts 1 and 2 on a bridge (10.77.0.1, .2); hosts 3 and 4 behind NAT (192.168.3.2 as 10.77.0.3, 192.168.4.2 as 10.77.0.4)"
else
    say "$hosts hosts on a bridge: 10.77.0.1 .. 10.77.0.$hosts"
fi

in_host() { local i=$1; shift; ip netns exec "${tag}-h$i" "$@"; }
cli() { local i=$1; shift; in_host "$i" "$bin" "$@" --network regtest --rpc 127.0.0.1:18443 --data-dir "$work/h$i"; }
height() { cli "$1" status --json 2> /dev/null | sed -nE 's/.*"height": ?([0-9]+).*/\1/p'; }

lost_host() {   # no host still counts the cut-off host among its peers
    for ((i = 1; i < hosts; i++)); do [[ $(peers_of "$i") -le $((hosts - 2)) ]] || return 1; done
}

wait_until() {   # wait_until SECONDS DESCRIPTION COMMAND...
    local limit=$1 what=$2; shift 2
    local began=$SECONDS deadline=$((SECONDS + limit))
    until "$@"; do
        if ((SECONDS >= deadline)); then say "FAILED: $what (after ${limit}s)"; return 1; fi
        sleep 0.3
    done
    say "ok: $what ($((SECONDS - began)) s)"
}
all_at() { local h=$1; for ((i = 1; i <= hosts; i++)); do [[ $(height "$i") == "$h" ]] || return 1; done; }
host_at() { [[ $(height "$1") == "$2" ]]; }
logged() { grep -q -- "$2" "$work/$1.log"; }   # logged NAME PATTERN
peers_of() { cli "$1" status --json 2> /dev/null | sed -nE 's/.*"peer_count": ?([0-9]+).*/\1/p'; }

if ((nat)); then
    start() {   # start I [BOOTSTRAP]: no --external-addr: AutoNAT must find out by itself
        local i=$1
        local args=(node --network regtest --data-dir "$work/h$i" --listen /ip4/0.0.0.0/tcp/18444
                    --rpc 127.0.0.1:18443)
        [[ -n ${2:-} ]] && args+=(--bootstrap "$2")
        NO_COLOR=1 RUST_LOG=${MULTIHOST_LOG:-info,libp2p_dcutr=debug} ip netns exec "${tag}-h$i" "$bin" "${args[@]}" > "$work/h$i.log" 2>&1 &
        pids+=($!)
    }
    field() { cli "$1" status --json 2> /dev/null | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"; }
    reach_is() { [[ $(field "$1" reachability) == "$2" ]]; }
    id_of() { field "$1" peer_id; }
    # link I PEER: "direct" or "relayed" if host I is connected to PEER, else nothing.
    link() {
        cli "$1" peers --json 2> /dev/null | python3 -c "
import json, sys
for p in json.load(sys.stdin):
    if p['peer_id'] == sys.argv[1]:
        print('relayed' if p['relayed'] else 'direct')" "$2"
    }
    linked() { [[ -n $(link "$1" "$2") ]]; }
    direct() { [[ $(link 3 "$id4") == direct && $(link 4 "$id3") == direct ]]; }

    start 1
    wait_until 30 "host 1 answering" host_at 1 0
    start 2 10.77.0.1:18444
    start 3 10.77.0.1:18444
    start 4 10.77.0.1:18444
    wait_until 60 "every host answering" all_at 0
    wait_until 60 "host 1 reachable (AutoNAT)" logged h1 "reachable at /ip4/10.77.0.1/tcp/18444"
    wait_until 60 "host 2 reachable (AutoNAT)" logged h2 "reachable at /ip4/10.77.0.2/tcp/18444"
    for i in 3 4; do
        wait_until 60 "host $i not reachable from outside (AutoNAT)" logged "h$i" "not reachable from outside"
        wait_until 60 "host $i reports private in its status" reach_is "$i" private
        wait_until 60 "host $i holds a relay slot" logged "h$i" "relay slot reserved"
    done
    reach_is 1 public && reach_is 2 public || { say "FAILED: a public host does not say public"; exit 1; }
    say "ok: hosts 1 and 2 report public in their status"
    cli 3 mine --blocks 5 > /dev/null
    wait_until 60 "a block mined behind NAT (host 3) reached every host" all_at 5
    cli 4 mine --blocks 5 > /dev/null
    wait_until 60 "a block mined behind NAT (host 4) reached every host" all_at 10
    id3=$(id_of 3)
    id4=$(id_of 4)
    wait_until 120 "hosts 3 and 4 found and connected to each other" linked 3 "$id4"
    if ! wait_until 120 "hosts 3 and 4 connected directly (hole punch)" direct; then
        grep -h "hole punch\|relay slot\|relayed=true" "$work/h3.log" "$work/h4.log" | sed 's/^/[multihost]   /'
        exit 1
    fi
    grep -h "hole punching" "$work/h3.log" "$work/h4.log" | head -n 2 | sed 's/^/[multihost]   /'
    kill -TERM "${pids[0]}"
    wait "${pids[0]}" 2>/dev/null || true
    say "host 1 stopped"
    cli 3 mine --blocks 3 > /dev/null
    wait_until 60 "host 3's block reached host 4 without host 1" host_at 4 13
    wait_until 60 "host 3's block reached host 2 without host 1" host_at 2 13
    cli 4 mine --blocks 3 > /dev/null
    wait_until 60 "host 4's block reached host 3 without host 1" host_at 3 16
    say "the reachability verdicts:"
    grep -h "reachable at\|not reachable\|relay slot reserved" "$work"/h[1-4].log | sed 's/^/[multihost]   /'
    say "all checks passed"
    exit 0
fi

# run_host I NAME [ARGS...]: host I's node (its data dir, port 18444, its bridge address
# as --external-addr), logging to NAME.log. `ip netns exec` execs the node, so $! is the
# node itself (not a wrapper shell).
declare -A host_pid
run_host() {
    local i=$1 name=$2
    shift 2
    NO_COLOR=1 ip netns exec "${tag}-h$i" "$bin" node --network regtest --data-dir "$work/h$i" \
        --listen /ip4/0.0.0.0/tcp/18444 --rpc 127.0.0.1:18443 \
        --external-addr "/ip4/10.77.0.$i/tcp/18444" "$@" > "$work/$name.log" 2>&1 &
    pids+=($!)
    host_pid[$i]=$!
}
stop_host() { kill "-${2:-TERM}" "${host_pid[$1]}"; wait "${host_pid[$1]}" 2>/dev/null || true; }
# connected_at_least I N: host I has N peers or more.
connected_at_least() { [[ $(peers_of "$1") -ge $2 ]]; }
# meshed FIRST MIN: hosts FIRST..N each have MIN peers or more.
meshed() { for ((j = $1; j <= hosts; j++)); do connected_at_least "$j" "$2" || return 1; done; }

# Hosts 2..N come up before their bootstrap peer: they keep retrying it until it is up.
for ((i = 2; i <= hosts; i++)); do run_host "$i" "h$i" --bootstrap 10.77.0.1:18444; done
wait_until 30 "host 2 retries its bootstrap peer, not up yet" logged h2 "cannot reach bootstrap peer"
run_host 1 h1
wait_until 60 "every host answering" all_at 0
wait_until 60 "host 1, up late, joined by every other host" connected_at_least 1 $((hosts - 1))

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
stop_host "$last"
rm -rf "$work/h$last"
run_host "$last" "h$last-again" --bootstrap 10.77.0.1:18444
joined_host_1() { cli "$last" peers --json 2> /dev/null | grep -q '/ip4/10.77.0.1/'; }
wait_until 60 "host $last joined host 1 during the flood" joined_host_1
wait_until 60 "host $last synced to height 35 during the flood" host_at "$last" 35
kill -TERM "$holder" 2>/dev/null || true
wait "$holder" 2>/dev/null || true
say "ok: the flood $(tail -n1 "$holder_log")"

# A node killed with SIGKILL and started again at once, same key and data dir, keeps
# gossiping both ways.
stop_host 2 KILL
say "host 2 killed with SIGKILL"
run_host 2 h2-killed --bootstrap 10.77.0.1:18444
wait_until 60 "host 2 answering again at height 35" host_at 2 35
wait_until 60 "host 2 connected again" connected_at_least 2 1
cli 2 mine --blocks 1 > /dev/null
wait_until 60 "host 2's new block reached host 1" host_at 1 36
cli 1 mine --blocks 1 > /dev/null
wait_until 60 "host 1's new block reached host 2" host_at 2 37

# Every node stops; host 1 stays down; the others come back with no --bootstrap at all and
# find each other again from their peer books.
wait_until 60 "hosts 2..$hosts connected to every other host" meshed 2 $((hosts - 1))
for ((i = hosts; i >= 1; i--)); do stop_host "$i"; done
say "all hosts stopped"
for ((i = 2; i <= hosts; i++)); do run_host "$i" "h$i-book"; done
wait_until 15 "hosts 2..$hosts reconnected from their peer books (no --bootstrap, host 1 down)" \
    meshed 2 $((hosts - 2))
say "all checks passed"
