#!/usr/bin/env bash
# Compiles every src/main/cuda/*.cu to PTX twice: for sm_90 (H100/H200, what we run) and for compute_80 (a PTX
# fallback the driver JIT-compiles on A100-class and newer cards). Checks the sm_90 PTX with ptxas (no GPU
# needed) and fails on any error. Writes index.txt, the list CudaKernelCatalog reads: without it the jar says it
# holds no GPU kernels. Usage: build-ptx.sh SRC_DIR OUT_DIR. Run by the Maven profile "nvcc".
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
ptxas="$(dirname "$nvcc")/ptxas"
[ -x "$ptxas" ] || ptxas="$(command -v ptxas || true)"
mkdir -p "$out"
index="$out/index.txt"
tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
echo "# nvcc: $("$nvcc" --version | tail -1)" >"$tmp"
shopt -s nullglob
for cu in "$src"/*.cu; do
  name="$(basename "$cu" .cu)"
  for target in sm_90 sm_80; do
    ptx="$out/$name.$target.ptx"
    arch=$([ "$target" = sm_90 ] && echo sm_90 || echo compute_80)
    # Rebuild only when the source or a header beside it is newer (nvcc on template-heavy files takes seconds).
    if [ ! -f "$ptx" ] || [ "$cu" -nt "$ptx" ] || [ -n "$(find "$src" -name '*.cuh' -newer "$ptx" -print -quit)" ]; then
      "$nvcc" -ptx -arch="$arch" -std=c++17 -O3 -lineinfo -I"$src" -o "$ptx" "$cu"
    fi
  done
  if [ -n "$ptxas" ]; then
    # ptxas compiles the PTX to sm_90 machine code exactly as the driver would: errors here are load errors there.
    "$ptxas" -arch=sm_90 -O3 -o /dev/null "$out/$name.sm_90.ptx"
  else
    echo "build-ptx: ptxas not found; $name.sm_90.ptx is not checked" >&2
  fi
  echo "$name" >>"$tmp"
done
mv "$tmp" "$index"
trap - EXIT
