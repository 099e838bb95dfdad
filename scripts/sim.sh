#!/usr/bin/env bash
# Runs every simulator scenario (the `sim::` unit tests) on N random seeds and reports the
# seeds that fail, each with the command that replays it.
#   scripts/sim.sh [--seeds N]        (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."

seeds=20
while [[ $# -gt 0 ]]; do
    case $1 in
        --seeds) seeds=${2:?--seeds needs a number}; shift 2 ;;
        *) echo "usage: scripts/sim.sh [--seeds N]" >&2; exit 2 ;;
    esac
done

echo "[sim] building the unit tests"
bin=$(cargo test --lib --no-run --message-format=json 2>/dev/null \
    | grep -o '"executable":"[^"]*"' | tail -n1 | cut -d'"' -f4)
[[ -x $bin ]] || { echo "[sim] could not find the test binary" >&2; exit 1; }

failed=()
start=$(date +%s)
for ((i = 1; i <= seeds; i++)); do
    seed=$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')
    if MINICHAIN_SIM_SEED=$seed "$bin" sim:: --quiet > "/tmp/minichain-sim-$seed.log" 2>&1; then
        rm -f "/tmp/minichain-sim-$seed.log"
        echo "[sim] seed $seed: ok"
    else
        failed+=("$seed")
        echo "[sim] seed $seed: FAILED (log: /tmp/minichain-sim-$seed.log)"
        grep -h "failed with seed" "/tmp/minichain-sim-$seed.log" | sed 's/^/[sim]   /' || true
    fi
done
echo "[sim] $((seeds - ${#failed[@]})) of $seeds seeds clean in $(($(date +%s) - start)) s"
if ((${#failed[@]})); then
    echo "[sim] replay one with: MINICHAIN_SIM_SEED=<seed> cargo test --lib sim::"
    exit 1
fi
