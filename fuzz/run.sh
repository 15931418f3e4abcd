#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 60) each, with no sanitizer so
# it builds on the stable toolchain. The committed seeds (fuzz/seeds/, small)
# are read-only; what the fuzzer finds goes to a temporary corpus that is
# thrown away. Crashes would land in fuzz/artifacts/ and fail the script.
#   fuzz/run.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for t in client_proto client_json channel_pattern inbound_frame; do
  mkdir -p "$work/$t"
  echo "== $t for ${secs}s"
  cargo fuzz run --sanitizer none "$t" "$work/$t" "seeds/$t" -- -max_total_time="$secs" -max_len=4096 2>&1 | grep -E "^Done|crash|panicked|deadly|SUMMARY" || true
  if [ -n "$(ls -A artifacts/"$t" 2>/dev/null)" ]; then
    echo "$t: crash inputs in fuzz/artifacts/$t" >&2
    exit 1
  fi
done
