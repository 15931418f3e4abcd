#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 60) each, with no sanitizer so
# it builds on the stable toolchain (installs cargo-fuzz from crates.io if
# missing). The committed seeds (fuzz/seeds/, small) are read-only; what the
# fuzzer finds goes to a temporary corpus that is thrown away. A crash
# leaves its input in fuzz/artifacts/<target>/ and fails the script.
#   fuzz/run.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
targets=(client_proto client_json channel_pattern inbound_frame
  binance_msg okx_msg bybit_msg coinbase_msg kraken_msg twr_reader
  publish_body ws_fragments)
# one build for all targets, so each target's time is fuzzing time
cargo fuzz build --sanitizer none
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for t in "${targets[@]}"; do
  mkdir -p "$work/$t"
  echo "== $t for ${secs}s"
  status=0
  cargo fuzz run --sanitizer none "$t" "$work/$t" "seeds/$t" -- \
    -max_total_time="$secs" -max_len=4096 -print_final_stats=1 >"$work/$t.log" 2>&1 || status=$?
  grep -E "^Done|stat::number_of_executed_units|SUMMARY|panicked" "$work/$t.log" || true
  if [ "$status" -ne 0 ] || [ -n "$(ls -A artifacts/"$t" 2>/dev/null)" ]; then
    tail -n 40 "$work/$t.log" >&2
    echo "$t: failed (exit $status); crash inputs in fuzz/artifacts/$t" >&2
    exit 1
  fi
done
