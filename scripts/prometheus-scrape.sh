#!/usr/bin/env bash
# A real Prometheus scrapes a running minichain node. Starts a regtest node on loopback
# (ports picked by the kernel), mines 3 blocks into it, points a Prometheus server at its
# GET /metrics every second, and asks Prometheus's own query API until it has the node's
# metrics: the target is up, minichain_build_info, minichain_uptime_seconds,
# minichain_database_bytes, process_resident_memory_bytes, process_cpu_seconds_total,
# minichain_chain_height (>= 3), and minichain_bans_total with every offence there at 0
# from the start. Everything runs in a temporary dir that is removed at the end, with
# every process it started.
#
#   scripts/prometheus-scrape.sh [BINARY]     (default: target/debug/minichain)
#
# Needs prometheus (Debian package `prometheus`), curl and python3.
# Exit codes: 0 every query answered, 1 a check failed or something is missing.
set -euo pipefail

bin=${1:-target/debug/minichain}
deadline_secs=60

if ! command -v prometheus >/dev/null 2>&1; then
    echo "prometheus-scrape: prometheus not found: install it (Debian: apt-get install prometheus)" >&2
    exit 1
fi
for tool in curl python3; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "prometheus-scrape: $tool not found" >&2
        exit 1
    fi
done
if [[ ! -x $bin ]]; then
    echo "prometheus-scrape: no minichain binary at $bin (build it first: cargo build)" >&2
    exit 1
fi
[[ $bin == */* ]] && bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

# The node's behaviour comes from its flags here, not from the caller's environment.
unset RUST_LOG
while read -r var; do unset "$var"; done < <(compgen -e | grep '^MINICHAIN_' || true)

dir=$(mktemp -d "${TMPDIR:-/tmp}/prometheus-scrape.XXXXXX")
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        # A clean stop takes well under a second; SIGKILL whatever is still there after 10.
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
    echo "prometheus-scrape: FAIL: $*" >&2
    echo "--- node log (tail) ---" >&2
    tail -n 30 "$dir/node.log" >&2 2>/dev/null || true
    echo "--- prometheus log (tail) ---" >&2
    tail -n 30 "$dir/prometheus.log" >&2 2>/dev/null || true
    exit 1
}

# Loopback only, never through a proxy.
get() { curl -s --noproxy '*' --max-time 5 "$@"; }

# --- the node ---------------------------------------------------------------------------
"$bin" node --network regtest --listen /ip4/127.0.0.1/tcp/0 --rpc 127.0.0.1:0 \
    --data-dir "$dir/node" --log-format json >/dev/null 2>"$dir/node.log" &
node_pid=$!
pids+=("$node_pid")

start=$SECONDS
addr=""
while [[ -z $addr ]]; do
    kill -0 "$node_pid" 2>/dev/null || fail "the node exited before its HTTP API came up"
    ((SECONDS - start < deadline_secs)) || fail "no 'HTTP API listening' line in the node's log within ${deadline_secs}s"
    sleep 0.2
    [[ -f $dir/node.log ]] || continue
    addr=$(python3 - "$dir/node.log" <<'EOF'
import json, sys
for line in open(sys.argv[1], errors="replace"):
    try:
        event = json.loads(line)
    except ValueError:
        continue
    if str(event.get("message", "")).startswith("HTTP API listening") and event.get("addr"):
        print(event["addr"])
        break
EOF
)
done
echo "node API at $addr"

"$bin" mine --blocks 3 --network regtest --rpc "$addr" --data-dir "$dir/node" --wait 30 \
    >"$dir/mine.out" 2>&1 || { cat "$dir/mine.out" >&2; fail "minichain mine --blocks 3 failed"; }
echo "mined $(wc -l <"$dir/mine.out") blocks"

# --- the scrape config ------------------------------------------------------------------
# Reads are open (docs/api.md); should /metrics ever want the token, send the cookie.
auth=""
code=$(get -o /dev/null -w '%{http_code}' "http://$addr/metrics") || code=000
case $code in
    200) ;;
    401)
        auth="    authorization:
      type: Bearer
      credentials_file: $dir/node/.cookie"
        code=$(get -o /dev/null -w '%{http_code}' \
            -H "Authorization: Bearer $(cat "$dir/node/.cookie")" "http://$addr/metrics") || code=000
        [[ $code == 200 ]] || fail "GET /metrics answers $code even with the cookie token"
        echo "/metrics wants the API token: scraping with the cookie"
        ;;
    *) fail "GET http://$addr/metrics answers $code" ;;
esac

cat >"$dir/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: minichain
    metrics_path: /metrics
$auth
    static_configs:
      - targets: ["$addr"]
EOF
if command -v promtool >/dev/null 2>&1; then
    promtool check config "$dir/prometheus.yml" >"$dir/promtool.out" 2>&1 \
        || { cat "$dir/promtool.out" >&2; fail "promtool rejects the scrape config"; }
fi

# --- prometheus -------------------------------------------------------------------------
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
prom=""
for attempt in 1 2 3; do
    port=$(free_port)
    prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/tsdb" \
        --web.listen-address="127.0.0.1:$port" >"$dir/prometheus.log" 2>&1 &
    prom_pid=$!
    pids+=("$prom_pid")
    start=$SECONDS
    while kill -0 "$prom_pid" 2>/dev/null && ((SECONDS - start < deadline_secs)); do
        if [[ $(get -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/-/ready") == 200 ]]; then
            prom=http://127.0.0.1:$port
            break 2
        fi
        sleep 0.2
    done
    kill -0 "$prom_pid" 2>/dev/null && fail "prometheus not ready within ${deadline_secs}s"
    # The port may have been taken between picking it and binding it: try another.
    grep -q 'address already in use' "$dir/prometheus.log" || fail "prometheus exited"
    echo "port $port taken, retrying (attempt $attempt)"
done
[[ -n $prom ]] || fail "prometheus could not bind a port"
echo "prometheus at $prom, scraping http://$addr/metrics every 1s"

# --- the queries ------------------------------------------------------------------------
# Prints the instant vector a query returns, one series a line (`name{labels} value`,
# without the job and instance labels); fails if the query errs or the vector is empty.
print_vector='
import json, sys
answer = json.load(sys.stdin)
if answer.get("status") != "success" or answer["data"]["resultType"] != "vector":
    sys.exit(1)
result = answer["data"]["result"]
for series in result:
    metric = dict(series["metric"])
    name = metric.pop("__name__", sys.argv[1])
    labels = ",".join(f"{k}=\"{v}\"" for k, v in sorted(metric.items()) if k not in ("job", "instance"))
    print(f"{name}{{{labels}}}" if labels else name, series["value"][1])
sys.exit(0 if result else 1)
'
query() {
    get -f -G --data-urlencode "query=$1" "$prom/api/v1/query" | python3 -c "$print_vector" "$1"
}

start=$SECONDS
# Waits (within the one deadline for all queries) until the query returns a non-empty
# vector, and leaves it in $answer.
answer=""
await() {
    while ! answer=$(query "$1" 2>/dev/null); do
        kill -0 "$node_pid" 2>/dev/null || fail "the node exited while waiting for: $1"
        kill -0 "$prom_pid" 2>/dev/null || fail "prometheus exited while waiting for: $1"
        if ((SECONDS - start >= deadline_secs)); then
            echo "last answer to $1:" >&2
            get -G --data-urlencode "query=$1" "$prom/api/v1/query" >&2 || true
            echo >&2
            echo "targets:" >&2
            get "$prom/api/v1/targets" >&2 || true
            echo >&2
            fail "query never answered within ${deadline_secs}s: $1"
        fi
        sleep 0.5
    done
}

await 'up{job="minichain"} == 1'
echo "up{job=\"minichain\",instance=\"$addr\"} 1"
for metric in minichain_build_info minichain_uptime_seconds minichain_database_bytes \
    process_resident_memory_bytes process_cpu_seconds_total; do
    await "$metric"
    echo "$answer"
done
await 'minichain_chain_height >= 3'
echo "$answer"

# Every offence label at 0 from the start, the same set as the node serves itself.
await minichain_bans_total
scraped=$(sed -n 's/^minichain_bans_total{offence="\([^"]*\)"} .*/\1/p' <<<"$answer" | sort)
served=$(get "http://$addr/metrics" | sed -n 's/^minichain_bans_total{offence="\([^"]*\)"} .*/\1/p' | sort)
count=$(grep -c . <<<"$scraped" || true)
((count > 1)) || fail "minichain_bans_total has $count series, want one per offence: $answer"
[[ $scraped == "$served" ]] || fail "minichain_bans_total offences in prometheus ($(echo $scraped)) differ from the node's /metrics ($(echo $served))"
nonzero=$(awk '$2 != "0"' <<<"$answer")
[[ -z $nonzero ]] || fail "minichain_bans_total not 0 on a fresh node: $nonzero"
echo "minichain_bans_total $count offences, all 0: $(echo $scraped | tr ' ' ',')"

echo "prometheus scrape: ok"
