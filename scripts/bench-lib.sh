# Helpers of scripts/bench.sh and scripts/bench-relay.sh, sourced: they expect $root (the
# repository), $bin (the release binary), $work (a scratch dir), the array pids (started
# processes, killed on exit) and a function say.
status() { curl -sf "127.0.0.1:$1/status" 2> /dev/null; }
# Ports the kernel says are free now (bound to port 0 and released), never fixed ones.
free_ports() { python3 -c "
import socket
socks = [socket.socket() for _ in range($1)]
for s in socks: s.bind(('127.0.0.1', 0))
print(' '.join(str(s.getsockname()[1]) for s in socks))"; }
# logwait TIMEOUT MESSAGE [KEY=VALUE...] LOG...: the Unix time of the first JSON log line
# in each LOG with that message and those fields, by the node's own clock.
logwait() {
    local timeout=$1 message=$2; shift 2
    local where=()
    while [[ $1 == *=* ]]; do where+=(--where "$1"); shift; done
    python3 "$root/scripts/benchwait.py" log --timeout "$timeout" --message "$message" "${where[@]}" "$@" \
        || { say "FAILED: '$message' not logged within $timeout s"; exit 1; }
}
# heightwait TIMEOUT HEIGHT PORT...: the Unix time each node's /status first showed HEIGHT
# (one process, one kept-alive connection per node: a node catching up logs its blocks at
# debug level only, so the logs cannot tell).
heightwait() {
    local timeout=$1 height=$2; shift 2
    python3 "$root/scripts/benchwait.py" height --timeout "$timeout" --height "$height" "$@" \
        || { say "FAILED: height $height not reached within $timeout s"; exit 1; }
}
started=""
start_node() {  # start_node NAME RPC_PORT P2P_PORT [args...]; the pid lands in $started
    local name=$1 rpc=$2 p2p=$3; shift 3
    NO_COLOR=1 "$bin" node --network regtest --data-dir "$work/$name" --listen "/ip4/127.0.0.1/tcp/$p2p" \
        --rpc "127.0.0.1:$rpc" --log-format json "$@" > "$work/$name.log" 2>&1 &
    started=$!
    pids+=("$started")
}
