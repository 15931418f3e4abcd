#!/usr/bin/env bash
# Runs one scenario against tickwire and the peer baselines in rounds (run 1
# of every server, then run 2 of every server, ...: a noisy minute of the
# host hits one run of each, not every run of one) and prints one table of
# medians. Server pinned to CPU 0, load generator to CPU 1 (one thread).
#   loadtest/compare.sh SCENARIO [RUNS] [SERVERS...]
# e.g. loadtest/compare.sh broadcast-1k 3
#      loadtest/compare.sh light 3 tickwire limit-probe uws node-ws
# Servers: tickwire limit-probe uws naive-rust node-ws (the default: all).
# The whole matrix of issue 16 (medians of 3, every server):
#   for sc in light broadcast-1k target-10k broadcast-10k; do loadtest/compare.sh $sc 3; done
# The table shows the load client's own CPU ("client CPU %", of its one
# core): near 100 % the client, not the server, is the limit.
# Raw JSON lines are kept in artifacts/loadtest/SCENARIO-DATE.jsonl, and a
# picture of them (latency percentiles, deliveries/s per server) beside it
# as SCENARIO-DATE.svg.
set -euo pipefail
cd "$(dirname "$0")/.."
scenario=${1:?usage: loadtest/compare.sh SCENARIO [RUNS] [SERVERS...]}
runs=${2:-3}
shift $(( $# >= 2 ? 2 : 1 ))
servers=${*:-tickwire limit-probe uws naive-rust node-ws}

cargo build --release -q -p tickwire -p tickwire-load -p peer-naive-rust -p peer-limit-probe
for peer in node-ws uws; do
  if [ ! -d "loadtest/peers/$peer/node_modules" ]; then
    (cd "loadtest/peers/$peer" && npm ci --silent --no-audit --no-fund)
  fi
done
mkdir -p artifacts/loadtest
out="artifacts/loadtest/${scenario}-$(date -u +%Y%m%dT%H%M%SZ).jsonl"
port=$(( 20000 + RANDOM % 10000 ))
for run in $(seq 1 "$runs"); do
  for server in $servers; do
    port=$((port + 1))
    echo "== $scenario: $server run $run (port $port)" >&2
    taskset -c 1 target/release/tickwire-load --scenario "$scenario" --spawn "$server" \
      --server-cpus 0 --threads 1 --addr "127.0.0.1:$port" --json >> "$out"
  done
done
python3 loadtest/summarize.py "$out"
target/release/tickwire-load --plot "$out"
