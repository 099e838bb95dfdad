#!/usr/bin/env bash
# The wallet at scale, against a real regtest node: a 24-word wallet whose first ADDRS
# receive addresses each get BLOCKS/ADDRS coinbases, on a chain of BLOCKS blocks. Then
# times `wallet restore` from the words (the scan finds every address and coin), `wallet
# history` (every payment), `balance --wallet` and `wallet addresses`, each as the median
# of three runs, beside `minichain status` (one CLI round trip, the reference of the same
# run). Goals (issue 26): restore < 2 s, history < 1 s for 1,000 addresses, 10,000
# payments. Prints a markdown table, then one JSON object on its last line.
#
#   scripts/bench-wallet.sh [--addrs N] [--blocks N]   (default 1000, 10000)
set -euo pipefail
addrs=1000 blocks=10000
while [[ $# -gt 0 ]]; do
    case $1 in
        --addrs) addrs=${2:?}; shift 2 ;;
        --blocks) blocks=${2:?}; shift 2 ;;
        *) echo "usage: scripts/bench-wallet.sh [--addrs N] [--blocks N]" >&2; exit 2 ;;
    esac
done
(( blocks >= addrs && blocks % addrs == 0 )) || { echo "--blocks must be a multiple of --addrs" >&2; exit 2; }
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
say() { echo "[wallet] $*" >&2; }
[[ -x $root/target/release/minichain ]] || cargo build --release --quiet
bin=$root/target/release/minichain
source "$root/scripts/bench-lib.sh"
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
flags=$(grep -m1 '^flags' /proc/cpuinfo | grep -o -w -E 'sha_ni|avx2|avx512f' | tr '\n' ' ')

read -r rpc p2p < <(free_ports 2)
start_node node "$rpc" "$p2p"
for _ in $(seq 600); do status "$rpc" > /dev/null && break; sleep 0.1; done
conn=(--network regtest --rpc "127.0.0.1:$rpc" --data-dir "$work/node")
export MINICHAIN_PASSPHRASE="bench passphrase"
words=$("$bin" wallet new --network regtest --wallet "$work/w.json" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["mnemonic"])')
each=$(( blocks / addrs ))
say "mining $blocks blocks: $each to each of $addrs receive addresses"
started=$(date +%s)
for i in $(seq "$addrs"); do
    to=$("$bin" wallet receive "${conn[@]}" --wallet "$work/w.json")
    "$bin" mine "${conn[@]}" --blocks "$each" --to "$to" > /dev/null
    (( i % 100 == 0 )) && say "  $i addresses, $(( $(date +%s) - started )) s"
done

# median3 CMD...: the median wall time of three runs of CMD, in seconds.
median3() {
    local runs=()
    for _ in 1 2 3; do
        local t0 t1
        t0=$(date +%s.%N); "$@" > "$work/out" 2> "$work/err" || { cat "$work/err" >&2; exit 1; }; t1=$(date +%s.%N)
        runs+=("$(echo "$t1 - $t0" | bc)")
    done
    printf '%s\n' "${runs[@]}" | sort -g | sed -n 2p
}
restore() { rm -f "$work/r.json"; echo "$words" | "$bin" wallet restore "${conn[@]}" --wallet "$work/r.json" --json; }
restore_plain() { rm -f "$work/p.json"; echo "$words" | "$bin" wallet restore "${conn[@]}" --wallet "$work/p.json" --no-passphrase --json; }
t_status=$(median3 "$bin" status "${conn[@]}")
t_restore=$(median3 restore)
found=$(cat "$work/out")
t_plain=$(median3 restore_plain)
t_history=$(median3 "$bin" wallet history "${conn[@]}" --wallet "$work/r.json" --json)
payments=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$work/out")
t_balance=$(median3 "$bin" balance "${conn[@]}" --wallet "$work/r.json" --json)
t_addresses=$(median3 "$bin" wallet addresses "${conn[@]}" --wallet "$work/r.json" --json)
receive=$(echo "$found" | python3 -c 'import json,sys; print(json.load(sys.stdin)["receive"])')
[[ $receive == "$addrs" ]] || { say "FAILED: the restore found $receive receive addresses, not $addrs"; exit 1; }
(( payments >= blocks )) || { say "FAILED: history lists $payments payments, fewer than $blocks"; exit 1; }

echo "CPU: $cpu ($flags); $addrs addresses, $blocks blocks, $payments payments"
echo
echo "| command | median s | x status |"
echo "| --- | --- | --- |"
row() { printf '| %s | %.3f | %.1f |\n' "$1" "$2" "$(echo "$2 / $t_status" | bc -l)"; }
row "status (reference)" "$t_status"
row "wallet restore (passphrase: KDF included)" "$t_restore"
row "wallet restore --no-passphrase" "$t_plain"
row "wallet history" "$t_history"
row "balance --wallet" "$t_balance"
row "wallet addresses" "$t_addresses"
printf '{"cpu":"%s","addrs":%d,"blocks":%d,"payments":%d,"status_s":%.4f,"restore_s":%.4f,"restore_plain_s":%.4f,"history_s":%.4f,"balance_s":%.4f,"addresses_s":%.4f}\n' \
    "$cpu" "$addrs" "$blocks" "$payments" "$t_status" "$t_restore" "$t_plain" "$t_history" "$t_balance" "$t_addresses"
