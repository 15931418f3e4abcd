#!/usr/bin/env bash
# Regenerates src/tickwire/pb/ from proto/ (needs grpcio-tools); the tests fail when it is stale.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/src/tickwire/pb}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m grpc_tools.protoc -I"$here/../../proto" --python_out="$tmp" --pyi_out="$tmp" tickwire/v1/tickwire.proto
cp "$tmp/tickwire/v1/tickwire_pb2.py" "$tmp/tickwire/v1/tickwire_pb2.pyi" "$out/"
