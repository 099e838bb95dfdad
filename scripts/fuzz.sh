#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for a given time each, with libFuzzer via
# cargo fuzz on nightly. Outside CI: CI replays fuzz/regressions/ in `cargo test`.
#
#   scripts/fuzz.sh [--secs N] [--jobs J] [target ...]     (default: 600 s, 1 job, all)
#
# Crashes land in fuzz/artifacts/<target>/; copy each into fuzz/regressions/<target>/
# once fixed, so `cargo test` replays it for good. Prints one summary line per target.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=600
jobs=1
targets=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --secs) secs="$2"; shift 2 ;;
        --jobs) jobs="$2"; shift 2 ;;
        -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
        *) targets+=("$1"); shift ;;
    esac
done
if [[ ${#targets[@]} -eq 0 ]]; then
    targets=(block transaction sync_request sync_response http_body stored)
fi

command -v cargo-fuzz >/dev/null || cargo +nightly install cargo-fuzz --locked
rustup toolchain list | grep -q nightly || rustup toolchain install nightly --profile minimal

# The starting corpus: real blocks, transactions, frames, bodies and records.
cargo test --lib fuzzing::tests::write_seed_corpus -- --ignored --quiet >/dev/null

mkdir -p fuzz/logs
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    log="fuzz/logs/$t.log"
    status=ok
    parallel=()
    if [[ "$jobs" -gt 1 ]]; then parallel=(-fork="$jobs"); fi
    cargo +nightly fuzz run -O "$t" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" "${parallel[@]}" -max_len=1100000 \
        -rss_limit_mb=4096 -artifact_prefix="fuzz/artifacts/$t/" >"$log" 2>&1 || status=CRASH
    # libFuzzer ends with "Done N runs in S second(s)"; coverage is on its progress lines.
    runs=$(grep -Eo 'Done [0-9]+ runs' "$log" | awk '{print $2}' | tail -1 || true)
    cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1 | awk '{print $2}' || true)
    echo "$t: ${secs}s, ${runs:-?} runs, coverage ${cov:-?}, corpus $(ls "fuzz/corpus/$t" | wc -l), $status"
done
