#!/usr/bin/env bash
# compute-sanitizer's racecheck (shared-memory hazards) and synccheck (barrier misuse) on tiny cases of the kernels
# that synchronise: what the CPU model of CUDA execution cannot see. A separate device call from check.sh: the
# sanitizers run each launch 100-1000x slower. Cases (GpuCheck --sanitize REGEX picks them by name):
#   mla-reg-o     MLA split decode, register accumulators, forced 2 splits + merge
#   mla-smem-o    the same with shared-memory accumulators
#   gemm          gemm_bf16_tc
#   grouped-gemm  grouped_gemm_bf16_tc
#   topk          the top-k gate (V3 groups)
#   linear-staged linear_bf16w_f32_xs (activations staged in shared memory) against the warp-row kernel
# Usage: deploy/gpu/sanitize.sh [--filter REGEX] [PACK_DIR]; default filter: every case. Log: $OUT/sanitize.log.
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
filter='.'
if [ "${1:-}" = "--filter" ]; then
  filter="$2"
  shift 2
fi
pack="${1:-$root/deploy/gpu/target/expertmesh-gpu}"
if ! command -v compute-sanitizer >/dev/null; then
  echo "sanitize: compute-sanitizer is not installed on this host" >&2
  exit 2
fi
exec > >(tee "${OUT:-/tmp}/sanitize.log") 2>&1
status=0
for tool in racecheck synccheck; do
  printf '\n==== %s, cases matching %s (%s)\n' "$tool" "$filter" "$(date -u +%H:%M:%S)"
  timeout -k 10 "${SANITIZE_STEP_S:-100}" compute-sanitizer --tool "$tool" --error-exitcode 9 --print-limit 20 \
    "$pack/bin/gpu-check" --seed 1 --sanitize "$filter" || status=1
done
echo
[ "$status" = 0 ] && echo "SANITIZERS CLEAN" || echo "SANITIZERS FOUND PROBLEMS (or a case failed)"
exit "$status"
