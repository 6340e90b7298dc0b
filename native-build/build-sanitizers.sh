#!/usr/bin/env bash
# Builds what the kernel sanitizers run on (issue 16; what `mvn verify` runs before the kernel-sanitizers tests):
#   target/native-sanitized/libtandem_host_kernels.so    kernels/*.cu and the host emulation, with AddressSanitizer
#                                                         and UndefinedBehaviorSanitizer (abort at the first report)
#   target/native-sanitized/libtandem_planted_kernels.so src/test/native/planted_kernels.cu, the same way
#   target/native-sanitized/libasan.so                   a link to the compiler's ASan runtime, for LD_PRELOAD
# The planted kernels are test-only: nothing here reaches target/classes or the jar.
# Without g++ or its sanitizer runtimes it skips (the sanitizer tests then skip), unless TANDEM_REQUIRE_SANITIZERS=1.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
CXX="${CXX:-g++}"

skip() {
  if [ "${TANDEM_REQUIRE_SANITIZERS:-0}" = 1 ]; then
    echo "build-sanitizers: $1 (TANDEM_REQUIRE_SANITIZERS=1)" >&2
    exit 1
  fi
  echo "build-sanitizers: $1; skipping the kernel sanitizers (their tests will be skipped)"
  exit 0
}

command -v "$CXX" >/dev/null || skip "$CXX not found"
probe="$(mktemp -d)"
trap 'rm -rf "$probe"' EXIT
echo 'int main() { return 0; }' > "$probe/probe.cpp"
"$CXX" -fsanitize=address,undefined "$probe/probe.cpp" -o "$probe/probe" 2>/dev/null || skip "$CXX cannot link -fsanitize=address,undefined"
asan="$("$CXX" -print-file-name=libasan.so)"
[ -f "$asan" ] || skip "$CXX has no libasan.so"

common=(-std=c++17 -fPIC -fvisibility=hidden -Wall -Wextra -Werror -Wno-unused-parameter -Wno-unknown-pragmas
        -I "$root/kernels" -include "$root/kernels/host/cuda_host.h")
# -O1 -g1: file:line in every report at a fraction of -g's compile time; -O1 also keeps a use of an uninitialised
# or out-of-range value from being folded away before ASan sees the access.
sanitized=(-O1 -g1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all)

# library OUT.so OBJDIR 'FLAGS' SOURCES...: compiles what changed (sources, shared headers, or flags) and links.
library() {
  local out="$1" obj="$2" flags="$3"
  shift 3
  mkdir -p "$obj" "$(dirname "$out")"
  if [ "$(cat "$obj/flags" 2>/dev/null)" != "$flags" ]; then
    rm -f "$obj"/*.o
    echo "$flags" > "$obj/flags"
  fi
  local pids=() objs=() src o
  for src in "$@"; do
    o="$obj/$(basename "$src").o"
    objs+=("$o")
    if [ -f "$o" ] && [ "$o" -nt "$src" ] && [ "$o" -nt "$root/kernels/common.cuh" ] && [ "$o" -nt "$root/kernels/host/cuda_host.h" ]; then
      continue
    fi
    # shellcheck disable=SC2086
    "$CXX" "${common[@]}" $flags -x c++ -c "$src" -o "$o" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  # shellcheck disable=SC2086
  "$CXX" -shared $flags -o "$out.tmp" "${objs[@]}" -lpthread
  mv "$out.tmp" "$out"
}

runtime=("$root"/kernels/host/*.cpp)
planted="$root/src/test/native/planted_kernels.cu"
san="$root/target/native-sanitized"
library "$san/libtandem_planted_kernels.so" "$san/planted-obj" "${sanitized[*]}" "$planted" "${runtime[@]}"
library "$san/libtandem_host_kernels.so" "$san/host-obj" "${sanitized[*]}" "$root"/kernels/*.cu "${runtime[@]}"
ln -sfn "$asan" "$san/libasan.so"
echo "kernel sanitizers: $san/libtandem_host_kernels.so, $san/libtandem_planted_kernels.so (ASan+UBSan)"
