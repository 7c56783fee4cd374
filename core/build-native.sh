#!/usr/bin/env bash
# Compiles src/main/c/*.c into the shared library NativeMatmul loads from the jar
# (native/linux-x86_64/libexpertmesh-kernels.so beside its class). The kernels carry their own target attributes
# (AVX512-BF16), so the library is built for baseline x86-64 and loads on any such CPU; the Java side checks the
# CPU before it calls a kernel. Without gcc (or off x86-64 Linux) it builds nothing and the jar uses the Vector
# API only. Usage: build-native.sh SRC_DIR OUT_DIR. Run by the Maven profile "native".
set -euo pipefail
src="$1"
out="$2"
cc="${CC:-gcc}"
if ! command -v "$cc" >/dev/null || [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "build-native: no $cc on x86-64 Linux; the jar will use the Vector API kernels only" >&2
  exit 0
fi
mkdir -p "$out"
lib="$out/libexpertmesh-kernels.so"
if [ -f "$lib" ] && [ -z "$(find "$src" -name '*.c' -newer "$lib" -print -quit)" ]; then
  exit 0
fi
# A compiler that cannot build them (gcc before 10 has no AVX512-BF16 intrinsics) leaves the Java kernels, with a
# warning, so that the build still works; CI sets EXPERTMESH_NATIVE_REQUIRED=1 to fail instead.
if ! "$cc" -O3 -std=gnu11 -Wall -Wextra -fPIC -shared -fno-plt -Wl,-z,noexecstack -o "$lib.tmp" "$src"/*.c; then
  rm -f "$lib.tmp" "$lib"
  if [ "${EXPERTMESH_NATIVE_REQUIRED:-0}" = 1 ]; then
    echo "build-native: $cc could not compile the native kernels (EXPERTMESH_NATIVE_REQUIRED=1)" >&2
    exit 1
  fi
  echo "build-native: warning: $cc could not compile the native kernels; the jar will use the Vector API ones" >&2
  exit 0
fi
mv "$lib.tmp" "$lib"
