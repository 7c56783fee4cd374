#!/usr/bin/env bash
# The GPU host's first check, one command, no JDK or Maven needed, budgeted at 230 s of device time (not yet timed
# on a device) so a second start still fits the device budget. In order of importance:
# (1) every kernel against its CPU reference and every device op (CudaOps) against HostOps, on fresh random inputs
#     (NaN-poisoned outputs, odd sizes); the device-resident forward pass against the CPU's on the fixtures and on a
#     model with V3's attention shapes; greedy generation with CudaKernels vs the CPU;
# (2) greedy generation through the pack's launcher on each fixture with the device pass, against the CPU's tokens
#     that pack.sh computed on the build machine (greedy-cpu.txt);
# (3) the MLA decode benchmark lines (batch 64 x 4096 context, both accumulator versions) and the 70 % verdict.
# FULL=1 adds the whole kernel benchmark table (with both product kernels at batch 1, 8, 16 and 64: the crossover
# for LinearOps.STAGED_ABOVE_BATCH) and the device forward pass's decode tokens/s with its launches, copies and
# waits per step (about 4 more minutes); MEMCHECK=1 adds the checks of (1) under compute-sanitizer's memcheck. Races and barrier misuse are
# deploy/gpu/sanitize.sh's job (a separate call).
# Usage: deploy/gpu/check.sh [PACK_DIR] (default deploy/gpu/target/expertmesh-gpu, made by pack.sh). The full
# log, stderr included, goes to $OUT/gpu-check.log when $OUT is set (the device tool's output folder). Exit 0 only
# if no step failed; a step skipped for lack of time is reported as SKIPPED and does not fail the check.
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
pack="${1:-$root/deploy/gpu/target/expertmesh-gpu}"
log="${OUT:-/tmp}/gpu-check.log"
if [ ! -x "$pack/bin/gpu-check" ]; then
  echo "check: no pack at $pack; run deploy/gpu/pack.sh where the project builds, and bring the folder" >&2
  exit 2
fi
source "$root/deploy/gpu/fixtures.sh"
exec > >(tee "$log") 2>&1
failed=0
skipped=0
section() { printf '\n==== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

section "device"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv 2>&1 || true

# One time budget for everything: each step gets its own cap or what is left, whichever is less; a step with under
# 10 s left is skipped. `timeout -k 10` kills a JVM that ignores the TERM (a hung kernel launch).
budget="${CHECK_BUDGET_S:-$([ "${FULL:-0}" = 1 ] && echo 480 || echo 230)}"
capped() {  # capped SECONDS COMMAND...
  local want="$1" left=$((budget - SECONDS - 5))
  shift
  [ "$left" -lt "$want" ] && want="$left"
  if [ "$want" -lt 10 ]; then
    echo "SKIPPED (time budget of ${budget} s spent): $*"
    return 125
  fi
  timeout -k 10 "$want" "$@"
}
step() {  # step SECONDS COMMAND...: runs a capped step and counts it as failed or skipped
  capped "$@"
  local rc=$?
  if [ "$rc" = 125 ]; then
    skipped=$((skipped + 1))
  elif [ "$rc" != 0 ]; then
    echo "FAILED (exit $rc): $*"
    failed=$((failed + 1))
  fi
}

read -r -a fixtures <<<"$(deploy_fixtures)"
fixture_dirs=()
for m in "${fixtures[@]}"; do fixture_dirs+=("$root/$m"); done

section "kernel checks, every device op vs HostOps, device forward vs CPU, greedy GPU vs CPU"
step 120 "$pack/bin/gpu-check" --seed "$(date +%s)" "${fixture_dirs[@]}"

section "greedy generation through the launcher, cuda (device forward pass) vs the CPU's tokens from pack time"
for m in "${fixtures[@]}"; do
  want=$(awk -v m="$m" '$1 == m {sub(/^[^ ]+ /, ""); print}' "$pack/greedy-cpu.txt")
  out=$(capped 20 "$pack/bin/greedy-run" "$root/$m" "$GREEDY_PROMPT" "$GREEDY_TOKENS" cuda)  # stderr: the log
  rc=$?
  got=$(grep '^tokens:' <<<"$out")
  if [ -n "$got" ] && [ "$got" = "$want" ]; then
    echo "SAME  $m $got"
  elif [ -z "$got" ] && [ "$rc" = 125 ]; then
    skipped=$((skipped + 1))
  else
    echo "DIFF  $m cuda '$got' cpu '$want'"
    failed=$((failed + 1))
  fi
done

section "MLA decode benchmark (the acceptance kernel)"
step 45 "$pack/bin/gpu-bench" --mla-only

if [ "${FULL:-0}" = 1 ]; then
  section "kernel benchmark, every kernel"
  step 120 "$pack/bin/gpu-bench"
  section "device forward pass: decode throughput on the benchmark model"
  # The model (~0.7 GB) is written outside $OUT: the device tool brings back everything under $OUT.
  step 120 "$pack/bin/forward-bench" "${TMPDIR:-/tmp}/expertmesh-bench-cache"
fi

# Out-of-bounds accesses that happen to pass the value checks (a read past a buffer into zeros) show here.
if [ "${MEMCHECK:-0}" = 1 ] && command -v compute-sanitizer >/dev/null; then
  section "kernel checks under compute-sanitizer memcheck"
  step 150 compute-sanitizer --tool memcheck --error-exitcode 9 --print-limit 20 "$pack/bin/gpu-check" --seed 1
fi

section "result"
echo "elapsed ${SECONDS} s of ${budget}; ${failed} step(s) failed, ${skipped} skipped"
if [ "$failed" = 0 ] && [ "$skipped" = 0 ]; then
  echo "GPU CHECK PASSED"
elif [ "$failed" = 0 ]; then
  echo "GPU CHECK PASSED WHAT RAN (${skipped} skipped for time: rerun with a larger CHECK_BUDGET_S)"
else
  echo "GPU CHECK FAILED"
fi
exit $([ "$failed" = 0 ] && echo 0 || echo 1)
