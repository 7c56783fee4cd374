#!/usr/bin/env bash
# Generates Python stubs of the public API (expertmesh.inference.v1, expertmesh.model.v1) and of the standard
# gRPC health service into OUT_DIR, with Debian's protoc and grpc_python_plugin
# (apt-get install -y protobuf-compiler protobuf-compiler-grpc python3-grpcio python3-protobuf).
# Usage: tools/interop/gen_stubs.sh OUT_DIR
set -euo pipefail
out="${1:?usage: gen_stubs.sh OUT_DIR}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
command -v protoc >/dev/null \
  || { echo "gen_stubs.sh: protoc not found (apt-get install -y protobuf-compiler)" >&2; exit 127; }
plugin="$(command -v grpc_python_plugin)" \
  || { echo "gen_stubs.sh: grpc_python_plugin not found (apt-get install -y protobuf-compiler-grpc)" >&2; exit 127; }
mkdir -p "$out"
protoc -I "$root/proto/src/main/proto" -I "$here/protos" \
  --python_out="$out" --grpc_out="$out" --plugin=protoc-gen-grpc="$plugin" \
  expertmesh/model/v1/model.proto expertmesh/inference/v1/inference.proto grpc/health/v1/health.proto
