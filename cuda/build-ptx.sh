#!/usr/bin/env bash
# Compiles every src/main/cuda/*.cu for the jar:
#   NAME.sm_90.fatbin  sm_90 machine code (SASS) plus compute_90 PTX: what an H100/H200 loads, so the driver runs
#                      the code ptxas reported on below instead of JIT-compiling PTX at start-up (newer cards JIT
#                      the PTX in it);
#   NAME.sm_90.ptx     the same PTX as text: CudaDevice reads the kernels' names and parameter types from it;
#   NAME.sm_80.ptx     a compute_80 PTX fallback the driver JIT-compiles on A100-class cards.
# Fails on any compile or ptxas error. Writes ptxas.txt (ptxas -v for the shipped sm_90 SASS: registers, spills,
# shared memory per kernel) and index.txt, the list CudaKernelCatalog reads: without it the jar says it holds no
# GPU kernels. Usage: build-ptx.sh SRC_DIR OUT_DIR. Run by the Maven profile "nvcc".
set -euo pipefail
src="$1"
out="$2"
nvcc="$(command -v nvcc || true)"
[ -z "$nvcc" ] && [ -n "${CUDA_HOME:-}" ] && [ -x "$CUDA_HOME/bin/nvcc" ] && nvcc="$CUDA_HOME/bin/nvcc"
[ -z "$nvcc" ] && [ -x /usr/local/cuda/bin/nvcc ] && nvcc=/usr/local/cuda/bin/nvcc
[ -z "$nvcc" ] && [ -x /usr/local/bin/nvcc ] && nvcc=/usr/local/bin/nvcc
if [ -z "$nvcc" ]; then
  echo "build-ptx: nvcc not found; the jar will hold no GPU kernels" >&2
  exit 0
fi
mkdir -p "$out"
index="$out/index.txt"
tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
echo "# nvcc: $("$nvcc" --version | tail -1)" >"$tmp"
shopt -s nullglob
stale() {  # $1 is missing, or older than its source or a header beside it
  [ ! -f "$1" ] || [ "$cu" -nt "$1" ] || [ -n "$(find "$src" -name '*.cuh' -newer "$1" -print -quit)" ]
}
for cu in "$src"/*.cu; do
  name="$(basename "$cu" .cu)"
  for target in sm_90 sm_80; do
    ptx="$out/$name.$target.ptx"
    arch=$([ "$target" = sm_90 ] && echo sm_90 || echo compute_80)
    # Rebuild only when the source or a header beside it is newer (nvcc on template-heavy files takes seconds).
    if stale "$ptx"; then
      "$nvcc" -ptx -arch="$arch" -std=c++17 -O3 -lineinfo -I"$src" -o "$ptx" "$cu"
    fi
  done
  fatbin="$out/$name.sm_90.fatbin"
  if stale "$fatbin" || [ ! -f "$out/$name.sm_90.ptxas.txt" ]; then
    # nvcc runs ptxas on the same PTX for the SASS; -v is the per-kernel resource report.
    "$nvcc" -fatbin -gencode 'arch=compute_90,code=[sm_90,compute_90]' -std=c++17 -O3 -lineinfo -I"$src" \
      -Xptxas -v -o "$fatbin" "$cu" 2>"$out/$name.sm_90.ptxas.txt" || { cat "$out/$name.sm_90.ptxas.txt" >&2; exit 1; }
  fi
  echo "$name" >>"$tmp"
done
# One report for the jar (and docs/GPU.md): per kernel its registers, spill stores/loads and shared memory.
cat "$out"/*.sm_90.ptxas.txt >"$out/ptxas.txt"
mv "$tmp" "$index"
trap - EXIT
