#!/usr/bin/env bash
# Builds the NVTX shim: native-build/nvtx/tandem_nvtx.c over the header-only NVTX 3 API (nvtx3/ in the CUDA
# toolkit's include folder) → target/native/libtandem_nvtx.so, copied to target/classes/native/. Nvtx.java loads it
# before libnvtx3interop / libnvToolsExt. Without the headers or a C compiler it says so and exits 0.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/target/native"
src="$root/native-build/nvtx/tandem_nvtx.c"
CC="${CC:-gcc}"
include=""
for d in "${CUDA_HOME:-}/include" /usr/local/cuda/include /usr/local/cuda-*/include /usr/include; do
  if [ -f "$d/nvtx3/nvToolsExt.h" ]; then include="$d"; break; fi
done
if [ -z "$include" ]; then
  echo "build-nvtx: no nvtx3/nvToolsExt.h found (CUDA toolkit headers); skipping the NVTX shim"
  exit 0
fi
if ! command -v "$CC" >/dev/null; then
  echo "build-nvtx: $CC not found; skipping the NVTX shim"
  exit 0
fi
mkdir -p "$out" "$root/target/classes/native"
lib="$out/libtandem_nvtx.so"
if [ ! -f "$lib" ] || [ "$src" -nt "$lib" ] || [ "$0" -nt "$lib" ]; then
  "$CC" -std=c11 -O2 -fPIC -shared -fvisibility=hidden -Wall -Wextra -Werror -I "$include" -o "$lib.tmp" "$src" -ldl
  mv "$lib.tmp" "$lib"
  echo "nvtx shim: $lib (headers from $include/nvtx3)"
fi
cp "$lib" "$root/target/classes/native/"
