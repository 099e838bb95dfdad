#!/usr/bin/env bash
# Block relay at internet scale in the simulator: 1,000 nodes on links of 50-150 ms and
# 20 Mbit/s, blocks of ~2,000 transactions every 10 virtual minutes, relayed whole and as
# compact blocks. Prints the table docs/benchmarks.md keeps (src/sim/internet.rs).
#   scripts/sim-net.sh [--nodes N] [--txs T] [--blocks B] [--seed S] [--no-idontwant-row]
#   (--no-idontwant-row adds a compact run with IDONTWANT off, to show what it saves;
#   MINICHAIN_SIM_VALIDATION_US=N in the environment makes each node take N µs per
#   transaction to validate a block before it forwards it)
set -euo pipefail
cd "$(dirname "$0")/.."

nodes=1000 txs=2000 blocks=1 seed=1
while [[ $# -gt 0 ]]; do
    case $1 in
        --nodes) nodes=${2:?}; shift 2 ;;
        --txs) txs=${2:?}; shift 2 ;;
        --blocks) blocks=${2:?}; shift 2 ;;
        --seed) seed=${2:?}; shift 2 ;;
        --no-idontwant-row) export MINICHAIN_SIM_NO_IDONTWANT=1; shift ;;
        *) echo "usage: scripts/sim-net.sh [--nodes N] [--txs T] [--blocks B] [--seed S]" >&2; exit 2 ;;
    esac
done

echo "[sim-net] building the unit tests (release)"
bin=$(cargo test --release --lib --no-run --message-format=json 2>/dev/null \
    | grep -o '"executable":"[^"]*"' | tail -n1 | cut -d'"' -f4)
[[ -x $bin ]] || { echo "[sim-net] could not find the test binary" >&2; exit 1; }
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
flags=$(grep -m1 '^flags' /proc/cpuinfo | grep -o -w -E 'sha_ni|avx2|avx512f' | sort -u | tr '\n' ' ')
echo "[sim-net] $(date -u +%F) on $cpu ($(nproc) cores; ${flags:-no sha_ni/avx2/avx512f})"
echo "[sim-net] $nodes nodes, ~$txs transactions per block, $blocks blocks per relay, seed $seed"
MINICHAIN_SIM_NODES=$nodes MINICHAIN_SIM_TXS=$txs MINICHAIN_SIM_BLOCKS=$blocks MINICHAIN_SIM_SEED=$seed \
    "$bin" sim::internet::sim_internet_scale_report --ignored --exact --nocapture --test-threads 1 \
    2> >(grep --line-buffered '^\[sim-net\]' >&2) | grep '^|'
