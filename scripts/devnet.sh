#!/usr/bin/env bash
# A local minichain network: N nodes on 127.0.0.1, node 0 mining, the others bootstrapped
# from it. Data dirs and logs live under one folder.
#
#   scripts/devnet.sh [start] [-n N] [--dir DIR] [--network devnet|regtest] [--miners M]
#   scripts/devnet.sh status [--dir DIR]
#   scripts/devnet.sh stop   [--dir DIR]
#
# `start` runs in the foreground and stops every node cleanly on Ctrl-C; `stop` (from
# another terminal) does the same. MINICHAIN_BIN picks the binary (default: a release
# build made here). Ports: P2P 19100+i, HTTP API 127.0.0.1:19200+i.
set -euo pipefail

cmd=start
if [[ $# -gt 0 && $1 != -* ]]; then cmd=$1; shift; fi
nodes=3
miners=1
dir=${MINICHAIN_DEVNET_DIR:-./devnet-data}
network=devnet
p2p_base=19100
rpc_base=19200
while [[ $# -gt 0 ]]; do
    case $1 in
        -n|--nodes) nodes=$2; shift 2 ;;
        --miners) miners=$2; shift 2 ;;
        --dir) dir=$2; shift 2 ;;
        --network) network=$2; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "devnet.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
[[ $nodes =~ ^[1-9][0-9]?$ ]] || { echo "devnet.sh: -n takes 1 to 99 nodes, got '$nodes'" >&2; exit 2; }
[[ $miners =~ ^[0-9]+$ && $miners -le $nodes ]] || { echo "devnet.sh: --miners must be 0..$nodes" >&2; exit 2; }

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${MINICHAIN_BIN:-}

stop_nodes() {
    local pids_file=$dir/pids
    [[ -f $pids_file ]] || { echo "no devnet running in $dir"; return 0; }
    local pids
    pids=$(cat "$pids_file")
    # SIGTERM: each node closes its database cleanly.
    kill -TERM $pids 2>/dev/null || true
    for _ in $(seq 1 100); do
        local alive=0
        for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
        [[ $alive == 0 ]] && break
        sleep 0.1
    done
    for p in $pids; do kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null; done
    rm -f "$pids_file"
    echo "devnet in $dir stopped"
}

status_nodes() {
    for ((i = 0; i < nodes; i++)); do
        local s
        s=$(curl -sf "127.0.0.1:$((rpc_base + i))/status" 2>/dev/null) || { echo "node$i: not answering"; continue; }
        echo "node$i: $s" | sed -E 's/"listen_addrs":\[[^]]*\],//'
    done
}

case $cmd in
    stop) stop_nodes; exit 0 ;;
    status) status_nodes; exit 0 ;;
    start) ;;
    *) echo "devnet.sh: unknown command '$cmd' (start, status, stop)" >&2; exit 2 ;;
esac

if [[ -f $dir/pids ]] && kill -0 $(head -n1 "$dir/pids") 2>/dev/null; then
    echo "devnet.sh: a devnet is already running in $dir (scripts/devnet.sh stop --dir $dir)" >&2
    exit 1
fi
if [[ -z $bin ]]; then
    echo "building minichain (release)..."
    (cd "$root" && cargo build --release --quiet)
    bin=$root/target/release/minichain
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
: > "$dir/pids"
trap 'echo; stop_nodes; exit 0' INT TERM

for ((i = 0; i < nodes; i++)); do
    args=(node --network "$network" --data-dir "$dir/node$i" --listen "/ip4/127.0.0.1/tcp/$((p2p_base + i))"
          --rpc "127.0.0.1:$((rpc_base + i))" --debug)
    ((i < miners)) && args+=(--mine)
    ((i > 0)) && args+=(--bootstrap "127.0.0.1:$p2p_base")
    NO_COLOR=1 "$bin" "${args[@]}" > "$dir/node$i.log" 2>&1 &
    echo $! >> "$dir/pids"
    # Let node 0 bind before the others dial it.
    if ((i == 0)); then
        for _ in $(seq 1 100); do curl -sf "127.0.0.1:$rpc_base/status" > /dev/null && break; sleep 0.1; done
    fi
done

cat <<INFO
devnet: $nodes $network nodes ($miners mining) in $dir
  follow a log:     tail -f $dir/node0.log
  ask a node:       curl -s 127.0.0.1:$rpc_base/status
                    $bin status --network $network --rpc 127.0.0.1:$rpc_base
  all nodes:        scripts/devnet.sh status -n $nodes
  stop:             Ctrl-C here, or scripts/devnet.sh stop --dir $dir
INFO

# Stay in the foreground; report if a node dies.
while true; do
    # `devnet.sh stop` removed the pid file: the nodes were stopped on purpose.
    [[ -f $dir/pids ]] || exit 0
    for p in $(cat "$dir/pids" 2>/dev/null); do
        if ! kill -0 "$p" 2>/dev/null; then
            echo "devnet.sh: node with pid $p exited; see its log in $dir" >&2
            stop_nodes
            exit 1
        fi
    done
    sleep 1
done
