#!/usr/bin/env bash
# Events/s a cluster ingest stores in JetStream: starts `nats-server -js`
# (temporary file store) and one ingest (`--sim-rate RATE --analytics off`)
# pinned to CPUS, then prints over a 5 s window (after 2 s) the events
# JetStream acknowledged, offered and dropped per second (`/stats`
# `cluster`), the NATS messages they took, and both processes' CPU.
#   loadtest/jetstream-ingest.sh [RATE] [CPUS] [TICKWIRE_BINARY]
# RATE: events/s or `max` (default); CPUS: a taskset list (default 0-1).
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-max} cpus=${2:-0-1} bin=${3:-target/release/tickwire}
command -v nats-server >/dev/null || { echo "needs nats-server (apt-get install -y nats-server)" >&2; exit 2; }
[ -n "${3:-}" ] || cargo build --release -q -p tickwire
store=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
np=$(free_port) hp=$(free_port)
taskset -c "$cpus" nats-server -js -sd "$store" -a 127.0.0.1 -p "$np" >/dev/null 2>&1 &
nats=$!
tw=""
trap 'kill $tw $nats 2>/dev/null || true; wait 2>/dev/null; rm -rf "$store"' EXIT
for _ in $(seq 50); do (echo > "/dev/tcp/127.0.0.1/$np") 2>/dev/null && break; sleep 0.1; done
taskset -c "$cpus" "$bin" serve --listen "127.0.0.1:$hp" --log warn --nats-url "nats://127.0.0.1:$np" \
  --sim-rate "$rate" --analytics off >/dev/null 2>&1 &
tw=$!
for _ in $(seq 100); do curl -sf "127.0.0.1:$hp/stats" >/dev/null && break; sleep 0.1; done
sleep 2
cluster() { curl -sf "127.0.0.1:$hp/stats" | python3 -c 'import json,sys; c=json.load(sys.stdin)["cluster"]; print(c["published"], c["offered"], c["dropped"], c["messages"])'; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
read -r p0 o0 d0 m0 < <(cluster); ct0=$(ticks $tw); cn0=$(ticks $nats); t0=$(date +%s.%N)
sleep 5
read -r p1 o1 d1 m1 < <(cluster); ct1=$(ticks $tw); cn1=$(ticks $nats); t1=$(date +%s.%N)
python3 - "$p0" "$p1" "$o0" "$o1" "$d0" "$d1" "$m0" "$m1" "$ct0" "$ct1" "$cn0" "$cn1" "$t0" "$t1" "$rate" <<'PY'
import sys
p0, p1, o0, o1, d0, d1, m0, m1, ct0, ct1, cn0, cn1 = map(int, sys.argv[1:13])
dt = float(sys.argv[14]) - float(sys.argv[13])
print(f"simulator {sys.argv[15]}: acknowledged {(p1 - p0) / dt:,.0f} events/s, offered {(o1 - o0) / dt:,.0f}/s, "
      f"dropped {(d1 - d0) / dt:,.0f}/s, {(m1 - m0) / dt:,.0f} NATS messages/s; "
      f"ingest CPU {(ct1 - ct0) / 100 / dt:.2f}, nats-server CPU {(cn1 - cn0) / 100 / dt:.2f}")
PY
