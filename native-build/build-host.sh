#!/usr/bin/env bash
# Builds the host-emulation library: the same kernels/*.cu as the fatbin, compiled as C++ by g++ against
# kernels/host/cuda_host.h, plus the fiber runtime. Output: target/native/libtandem_host_kernels.so
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/target/native"
obj="$out/host-obj"
mkdir -p "$obj"
CXX="${CXX:-g++}"
if ! command -v "$CXX" >/dev/null; then
  echo "build-host: $CXX not found; skipping the host-emulation kernels (their tests will be skipped)"
  exit 0
fi
flags=(-std=c++17 -O2 -fPIC -fvisibility=hidden -Wall -Wextra -Werror -Wno-unused-parameter -Wno-unknown-pragmas
       -I "$root/kernels" -include "$root/kernels/host/cuda_host.h")
pids=()
objs=()
for src in "$root"/kernels/*.cu "$root"/kernels/host/*.cpp; do
  o="$obj/$(basename "$src").o"
  objs+=("$o")
  lang=c++
  # Rebuild only what changed (sources, or the headers every file includes).
  if [ -f "$o" ] && [ "$o" -nt "$src" ] && [ "$o" -nt "$root/kernels/common.cuh" ] && [ "$o" -nt "$root/kernels/host/cuda_host.h" ]; then
    continue
  fi
  "$CXX" "${flags[@]}" -x "$lang" -c "$src" -o "$o" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
"$CXX" -shared -o "$out/libtandem_host_kernels.so.tmp" "${objs[@]}" -lpthread
mv "$out/libtandem_host_kernels.so.tmp" "$out/libtandem_host_kernels.so"
mkdir -p "$root/target/classes/native"
cp "$out/libtandem_host_kernels.so" "$root/target/classes/native/"
echo "host kernels: $out/libtandem_host_kernels.so"
