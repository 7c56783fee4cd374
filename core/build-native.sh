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
"$cc" -O3 -std=gnu11 -Wall -Wextra -Werror -fPIC -shared -fno-plt -Wl,-z,noexecstack -o "$lib" "$src"/*.c
