#!/usr/bin/env bash
# The GPU host's check, one command, no JDK or Maven needed, in order of importance:
# (1) every kernel against its CPU reference and every device op (CudaOps) against HostOps, on fresh random inputs
#     (NaN-poisoned outputs, odd sizes); the device-resident forward pass against the CPU's on the fixtures and on a
#     model with V3's attention shapes; greedy generation with CudaKernels vs the CPU;
# (2) greedy generation through the pack's launcher on each fixture, cuda (the device pass) vs cpu, ids compared;
# (3) the kernel benchmark: per kernel time, GB/s, TFLOP/s and % of the measured device-to-device copy bandwidth,
#     with MLA decode at batch 64 x 4096 context against the 70 % target;
# (4) decode tokens/s of the whole device pass on the benchmark model;
# (5) the checks of (1) again under compute-sanitizer's memcheck, where it is installed.
# Usage: deploy/gpu/check.sh [PACK_DIR] (default deploy/gpu/target/expertmesh-gpu, made by pack.sh). The full
# log goes to $OUT/gpu-check.log when $OUT is set (the device tool's output folder). Exit 0 only if all passed.
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
pack="${1:-$root/deploy/gpu/target/expertmesh-gpu}"
log="${OUT:-/tmp}/gpu-check.log"
if [ ! -x "$pack/bin/gpu-check" ]; then
  echo "check: no pack at $pack; run deploy/gpu/pack.sh where the project builds, and bring the folder" >&2
  exit 2
fi
exec > >(tee "$log") 2>&1
status=0
section() { printf '\n==== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

section "device"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv 2>&1 || true

fixtures=("$pack/fixtures/deepseek-v3-tiny/bf16" "$pack/fixtures/deepseek-v3-qlora0" "$pack/fixtures/mixtral-tiny"
          "$pack/fixtures/qwen2-moe-tiny" "$pack/fixtures/qwen3-moe-tiny")

# One time budget for everything (the device tool's call is capped at 540 s here): each step gets its own cap or
# what is left, whichever is less, and a step with under 10 s left is skipped and counts as a failure. The steps
# run in order of importance: correctness first, then the benchmarks, memcheck last.
budget="${CHECK_BUDGET_S:-510}"
capped() {  # capped SECONDS COMMAND...
  local want="$1" left=$((budget - SECONDS - 5))
  shift
  [ "$left" -lt "$want" ] && want="$left"
  if [ "$want" -lt 10 ]; then
    echo "SKIPPED (time budget of ${budget} s spent): $*"
    return 1
  fi
  timeout "$want" "$@"
}

section "kernel checks, every device op vs HostOps, device forward vs CPU, greedy GPU vs CPU"
capped 150 "$pack/bin/gpu-check" --seed "$(date +%s)" "${fixtures[@]}" || status=1

section "greedy generation through the launcher, cuda (device forward pass) vs cpu"
for m in "${fixtures[@]}"; do
  gpu=$(capped 20 "$pack/bin/greedy-run" "$m" 1,17,42,99,5,200,3,77 16 cuda 2>/dev/null | grep '^tokens:')
  cpu=$(capped 20 "$pack/bin/greedy-run" "$m" 1,17,42,99,5,200,3,77 16 cpu 2>/dev/null | grep '^tokens:')
  if [ -n "$gpu" ] && [ "$gpu" = "$cpu" ]; then
    echo "SAME  $(basename "$(dirname "$m")")/$(basename "$m") $gpu"
  else
    echo "DIFF  $(basename "$(dirname "$m")")/$(basename "$m") cuda '$gpu' cpu '$cpu'"
    status=1
  fi
done

section "kernel benchmark"
capped 120 "$pack/bin/gpu-bench" || status=1

section "device forward pass: decode throughput on the benchmark model"
# The model (~0.7 GB) is written outside $OUT: the device tool brings back everything under $OUT.
capped 120 "$pack/bin/forward-bench" "${TMPDIR:-/tmp}/expertmesh-bench-cache" || status=1

# Out-of-bounds accesses that happen to pass the value checks (a read past a buffer into zeros) show here.
# MEMCHECK=0 skips it.
if [ "${MEMCHECK:-1}" = 1 ] && command -v compute-sanitizer >/dev/null; then
  section "kernel checks under compute-sanitizer memcheck"
  capped 150 compute-sanitizer --tool memcheck --error-exitcode 9 --print-limit 20 \
    "$pack/bin/gpu-check" --seed 1 || status=1
fi

section "result"
echo "elapsed ${SECONDS} s of ${budget}"
[ "$status" = 0 ] && echo "GPU CHECK PASSED" || echo "GPU CHECK FAILED"
exit "$status"
