#!/usr/bin/env bash
# Runs CUDA kernels on a CPU execution model (emu.h: one OS thread per CUDA thread, blocks one after another,
# __syncthreads and warp shuffles through barriers), so their indexing, guards and reductions are tested on a
# machine without a GPU. Races and performance are not modelled; the GPU checks (GpuCheck) remain the real test.
# The kernels are compiled from src/main/cuda as they are, with two textual rewrites for the host compiler:
# static __shared__ arrays become function statics (blocks run one at a time) and extern __shared__ arrays point
# at the launch's dynamic shared memory; cp.async becomes a plain copy. Tensor-core code runs on inc/mma.h, a model
# of wmma whose fragment layout is not the hardware's (kernels must not depend on it, and the checks show whether
# they do).
# Usage: run.sh OUT_DIR [SEED]. Needs g++ (C++20). Exit 0 when every check passed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
src="$here/../../main/cuda"
out="$1"
seed="${2:-12345}"
mkdir -p "$out"
for f in common.cuh forward.cu elementwise.cu attention.cu linear.cu mla_decode.cu; do
  sed -E -e 's/extern __shared__ ([A-Za-z_]+) ([A-Za-z_]+)\[\];/\1* \2 = reinterpret_cast<\1*>(emuDynSmem.data());/' \
      -e 's/extern __shared__ __align__\(128\) unsigned char ([A-Za-z_]+)\[\];/unsigned char* \1 = emuDynSmem.data();/' \
      -e '/asm volatile\("cp\.async\.cg/c\    std::memcpy(smem, gmem, 16); (void) s;' \
      -e 's/\{ asm volatile\(.*\); \}$/{}/' \
      -e 's/__shared__ /static /' "$src/$f" >"$out/$f"
done
g++ -std=c++20 -O1 -pthread -Wno-unknown-pragmas -I"$here/inc" -I"$here" -I"$out" -o "$out/kernels_on_cpu" \
  "$here/kernels_on_cpu.cpp"
"$out/kernels_on_cpu" "$seed"
