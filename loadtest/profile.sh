#!/usr/bin/env bash
# Where a server's time goes in a load scenario: one load run with
# `perf record -g` on the server for 4 s inside the measured window, then
# a second run counting its writev calls with `perf stat`. Prints the load
# report's figures, writes/s and the perf file (`perf report -i FILE`).
# Server on CPU 0, load client on CPU 1, as in the matrices.
#   loadtest/profile.sh SCENARIO SERVER [DELAY_SECONDS]
# SERVER is a `--spawn` name (tickwire, limit-probe, uws, ...); DELAY is
# when sampling starts after the load run starts (default 4; 9 for the
# 10k-client scenarios, which ramp for 5 s). Needs `perf` (linux-perf).
set -euo pipefail
cd "$(dirname "$0")/.."
sc=$1 srv=$2 delay=${3:-4}
command -v perf >/dev/null || { echo "profile.sh needs perf (apt-get install -y linux-perf)" >&2; exit 2; }
cargo build --release -q -p tickwire -p tickwire-load -p peer-naive-rust -p peer-limit-probe
out=target/profile; mkdir -p "$out"
name="$out/$sc-$srv"
# the spawned server: the newest process named like the peer's binary
server_pid() {
  case "$srv" in
    tickwire) pgrep -nx tickwire ;;
    *) pgrep -n -f "peer-$srv|peers/$srv" ;;
  esac
}
run() { # ONE perf command per load run
  taskset -c 1 target/release/tickwire-load --scenario "$sc" --spawn "$srv" --server-cpus 0 \
    --threads 1 --addr "127.0.0.1:$((20000 + RANDOM % 10000))" --json -q > "$name.$1.json" 2>/dev/null &
  local load=$!
  sleep "$delay"
  local pid; pid=$(server_pid)
  echo "$1: sampling $(cat "/proc/$pid/comm") (pid $pid)"
  shift
  "$@" -p "$pid" -- sleep 4 || true
  wait "$load"
}
run record perf record -F 999 -g -o "$name.perf" -q
run writes perf stat -x, -o "$name.stat" -e task-clock,syscalls:sys_enter_writev
python3 - "$name" <<'PY'
import json, sys
name = sys.argv[1]
d = json.load(open(name + ".writes.json"))
stat = {}
for line in open(name + ".stat"):
    p = line.strip().split(",")
    if len(p) > 2 and p[0][:1].isdigit():
        stat[p[2]] = float(p[0])
cpu = stat.get("task-clock", 0) / 4000
writes = stat.get("syscalls:sys_enter_writev", 0) / 4
print(f"deliveries/s {d['deliveries_per_s']:,.0f}  p50 {d['latency_ms']['p50']} ms  p99 {d['latency_ms']['p99']} ms")
print(f"server CPU {cpu:.2f}  writev/s {writes:,.0f}  frames per write {d['deliveries_per_s'] / max(writes, 1):.1f}  "
      f"CPU us per write {cpu * 1e6 / max(writes, 1):.1f}")
print(f"cycles: perf report -i {name}.perf --no-children --sort dso,sym -g none")
PY
