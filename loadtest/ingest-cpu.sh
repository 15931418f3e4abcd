#!/usr/bin/env bash
# Publishing cost on one core: starts tickwire pinned to CPU 0 with the
# simulator at max rate, then prints events/s and server CPU-ns per event over
# a window (CPU time from /proc, events from /stats). Extra arguments go to
# the server, e.g. `--analytics off`.
#   loadtest/ingest-cpu.sh [SECONDS] [SERVER ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-4}
shift $(( $# >= 1 ? 1 : 0 ))
cargo build --release -q -p tickwire
port=$(( 30000 + RANDOM % 10000 ))
taskset -c 0 target/release/tickwire --listen "127.0.0.1:$port" --log warn --sim-rate max "$@" >/dev/null 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
sleep 2.5
published() { curl -sf "127.0.0.1:$port/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["events_published"])'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
e0=$(published); c0=$(cpu_ticks); t0=$(date +%s.%N)
sleep "$secs"
e1=$(published); c1=$(cpu_ticks); t1=$(date +%s.%N)
python3 - "$e0" "$e1" "$c0" "$c1" "$t0" "$t1" "$(getconf CLK_TCK)" <<'P'
import sys
e0, e1, c0, c1 = (int(x) for x in sys.argv[1:5])
t0, t1, hz = float(sys.argv[5]), float(sys.argv[6]), int(sys.argv[7])
n = e1 - e0
print(f"events/s {n / (t1 - t0):,.0f}  cpu-ns/event {(c1 - c0) / hz * 1e9 / n:,.0f}")
P
