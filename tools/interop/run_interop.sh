#!/usr/bin/env bash
# Interop check of a router with a gRPC client no one here wrote (Python grpcio): generates the stubs into a
# temporary directory, then runs python_client.py with Debian's /usr/bin/python3 (EXPERTMESH_PYTHON overrides).
# Usage: tools/interop/run_interop.sh HOST:PORT [python_client.py options, e.g. --expect-tokens 765,164,924]
# Exit codes are python_client.py's: 0 all expectations met, 1 a mismatch, 2 an RPC failed; 127 a tool is missing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${EXPERTMESH_PYTHON:-/usr/bin/python3}"
[ $# -ge 1 ] || { echo "usage: run_interop.sh HOST:PORT [options]" >&2; exit 64; }
"$python" -c 'import grpc, google.protobuf' 2>/dev/null || {
  echo "run_interop.sh: $python lacks grpc/protobuf (apt-get install -y python3-grpcio python3-protobuf)" >&2
  exit 127
}
stubs="$(mktemp -d)"
trap 'rm -rf "$stubs"' EXIT
"$here/gen_stubs.sh" "$stubs"
"$python" "$here/python_client.py" --stubs "$stubs" "$@"
