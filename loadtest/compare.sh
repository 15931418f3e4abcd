#!/usr/bin/env bash
# Runs one scenario against tickwire and the peer baselines back to back and
# prints one table of medians. Server pinned to CPU 0, load generator to CPU 1.
#   loadtest/compare.sh SCENARIO [RUNS] [SERVERS...]
# e.g. loadtest/compare.sh broadcast-1k 3
# Raw JSON lines are kept in artifacts/loadtest/SCENARIO-DATE.jsonl, and a
# picture of them (latency percentiles, deliveries/s per server) beside it
# as SCENARIO-DATE.svg.
set -euo pipefail
cd "$(dirname "$0")/.."
scenario=${1:?usage: loadtest/compare.sh SCENARIO [RUNS] [SERVERS...]}
runs=${2:-3}
shift $(( $# >= 2 ? 2 : 1 ))
servers=${*:-tickwire limit-probe naive-rust node-ws}

cargo build --release -q -p tickwire -p tickwire-load -p peer-naive-rust -p peer-limit-probe
if [ ! -d loadtest/peers/node-ws/node_modules ]; then
  (cd loadtest/peers/node-ws && npm ci --silent --no-audit --no-fund)
fi
mkdir -p artifacts/loadtest
out="artifacts/loadtest/${scenario}-$(date -u +%Y%m%dT%H%M%SZ).jsonl"
port=$(( 20000 + RANDOM % 10000 ))
for server in $servers; do
  for run in $(seq 1 "$runs"); do
    port=$((port + 1))
    echo "== $scenario: $server run $run (port $port)" >&2
    taskset -c 1 target/release/tickwire-load --scenario "$scenario" --spawn "$server" \
      --server-cpus 0 --threads 1 --addr "127.0.0.1:$port" --json >> "$out"
  done
done
python3 loadtest/summarize.py "$out"
target/release/tickwire-load --plot "$out"
