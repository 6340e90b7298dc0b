#!/usr/bin/env bash
# Static performance report of the CUDA kernels (issue 17): per kernel registers, spills, shared memory and
# occupancy on sm_80/86/89/90 (ptxas log of the fatbin build), the matvec/attention main loops from the sm_90 SASS
# (warp-instructions per weight byte, bytes in flight per SM), and a roofline estimate of a Llama-3.1-8B pass on
# H100/H200. Fails when a kernel spills or exceeds its budget in native-build/kernel-budgets.tsv. No GPU needed.
#   native-build/kernel-report.sh [--strict] [--write-bench] [--write-budgets] [kernel_report.py options]
#     --strict          a kernel without a budget fails too
#     --write-bench     also copy the report and the per-kernel estimates to bench/ (kernel-report.md,
#                       kernel-estimates.tsv: gpu-check.sh's table sets the latter beside the achieved bandwidth)
#     --write-budgets   record today's values as the budgets (native-build/kernel-budgets.tsv) and stop
#     --attention kv-head | --attention-efficiency F   see kernel_report.py --help
# Output: target/kernel-report/kernel-report.md, kernel-estimates.tsv (estimated GB/s per kernel and GPU), a
# summary on stdout. Optional input:
# target/kernel-report/launch-plan.tsv (launches per layer; columns in native-build/README.md).
#
# SASS needs a disassembler, which the CUDA 13 toolkit here lacks (nvcc/ptxas only). An nvdisasm next to nvcc or
# in $NVDISASM is used as is. Otherwise Debian bookworm's non-free nvidia-cuda-toolkit (CUDA 11.8) provides one:
# fetched once with apt-get download through a private sources list and state folder (the system's apt
# configuration is untouched), unpacked with dpkg-deb, its nvdisasm and cuobjdump kept in
# ~/.cache/tandem/cuda-11.8-disasm/. 11.8 reads CUDA 13's sm_90 cubins once the ELF header says the old ABI:
# OS/ABI byte 0x33, ABI version 7, e_flags 0x005a055a (SM number in bits 0-7 and 16-23, 0x0500 between) - done
# on a copy. Without nvcc or the disassembler: fails under TANDEM_REQUIRE_NVCC=1 (CI), else says so and exits 0.
# ~10 s when the fatbin is built and the disassembler cached (one sm_90 cubin compile, ~1 s of disassembly).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/target/kernel-report"
mkdir -p "$out"
bench=0 write_budgets=0 pass=()
for arg in "$@"; do
  case "$arg" in
    --write-bench) bench=1 ;;
    --write-budgets) write_budgets=1 ;;
    *) pass+=("$arg") ;;
  esac
done

# Without a tool: a one-line reason; fatal only where CI says this machine must have it.
give_up() {
  if [ "${TANDEM_REQUIRE_NVCC:-0}" = 1 ]; then
    echo "kernel-report: $1 (TANDEM_REQUIRE_NVCC=1)" >&2
    exit 1
  fi
  echo "kernel-report: skipped: $1"
  exit 0
}

NVCC="${NVCC:-$(command -v nvcc || true)}"
if [ -z "$NVCC" ]; then
  for d in /usr/local/cuda/bin /usr/local/cuda-*/bin; do [ -x "$d/nvcc" ] && NVCC="$d/nvcc" && break; done
fi
[ -n "$NVCC" ] || give_up "nvcc not found (set NVCC or put nvcc on PATH)"
command -v python3 >/dev/null || give_up "python3 not found"

# The ptxas log of all four targets: build-fatbin.sh with its default targets (a no-op when up to date).
env -u TANDEM_CUDA_ARCHS -u TANDEM_CUDA_PTX NVCC="$NVCC" bash "$root/native-build/build-fatbin.sh"
log="$root/target/native/fatbin-build.log"
unit="$root/target/native/tandem_kernels_all.cu"
fatbin="$root/target/native/tandem_kernels.fatbin"
[ -f "$log" ] && [ -f "$unit" ] || give_up "no ptxas log from build-fatbin.sh ($log)"

# The sm_90 cubin of the fatbin's translation unit, with its flags (rebuilt when the fatbin is newer).
cubin="$out/tandem_kernels.sm_90.cubin"
if [ ! -f "$cubin" ] || [ "$fatbin" -nt "$cubin" ]; then
  "$NVCC" -cubin -arch=sm_90 -std=c++17 -O3 -lineinfo -I "$root/kernels" -Werror all-warnings \
    -Xptxas -Werror -o "$cubin.tmp" "$unit"
  mv "$cubin.tmp" "$cubin"
fi

# The disassembler.
cache="${XDG_CACHE_HOME:-$HOME/.cache}/tandem/cuda-11.8-disasm"
fetch_disasm() {  # prints a reason and returns 1 when it cannot
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg tmp opts
  command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || { echo "no apt-get/dpkg-deb to fetch Debian's nvidia-cuda-toolkit"; return 1; }
  [ -f "$keyring" ] || { echo "no $keyring to verify Debian's archive"; return 1; }
  mkdir -p "$(dirname "$cache")"
  tmp="$(mktemp -d "$(dirname "$cache")/fetch.XXXXXX")"
  mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/deb" "$tmp/x"
  echo "deb [signed-by=$keyring] http://deb.debian.org/debian bookworm non-free" > "$tmp/sources.list"
  # Private sources, lists and caches: nothing under /etc/apt or /var/lib/apt changes. Root downloads
  # unsandboxed (the _apt user cannot write into this folder).
  opts=(-o "Dir::Etc::sourcelist=$tmp/sources.list" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$tmp/lists"
        -o "Dir::Cache=$tmp/cache" -o Debug::NoLocking=1 -o Acquire::Retries=2 -o Acquire::http::Timeout=30)
  [ "$(id -u)" = 0 ] && opts+=(-o APT::Sandbox::User=root)
  if ! apt-get -qq "${opts[@]}" update >"$tmp/apt.log" 2>&1 \
     || ! (cd "$tmp/deb" && apt-get -qq "${opts[@]}" download nvidia-cuda-toolkit) >>"$tmp/apt.log" 2>&1; then
    echo "apt-get could not download bookworm non-free nvidia-cuda-toolkit: $(grep -E '^(E|W):' "$tmp/apt.log" | head -1)"
    rm -rf "$tmp"; return 1
  fi
  if ! dpkg-deb --fsys-tarfile "$tmp"/deb/*.deb | tar -x -C "$tmp/x" ./usr/bin/nvdisasm ./usr/bin/cuobjdump; then
    echo "nvidia-cuda-toolkit's package has no usr/bin/nvdisasm"
    rm -rf "$tmp"; return 1
  fi
  rm -rf "$cache" && mv "$tmp/x/usr/bin" "$cache" && rm -rf "$tmp"
}
NVDISASM="${NVDISASM:-}"
patch=1
if [ -z "$NVDISASM" ] && [ -x "$(dirname "$(readlink -f "$NVCC")")/nvdisasm" ]; then
  NVDISASM="$(dirname "$(readlink -f "$NVCC")")/nvdisasm"
fi
if [ -n "$NVDISASM" ]; then
  patch=0
else
  if [ ! -x "$cache/nvdisasm" ]; then
    echo "kernel-report: fetching a SASS disassembler (Debian bookworm non-free nvidia-cuda-toolkit 11.8, ~84 MB) into $cache"
    why="$(fetch_disasm)" || give_up "no SASS disassembler: $why"
  fi
  NVDISASM="$cache/nvdisasm"
fi

sass="$out/tandem_kernels.sm_90.sass"
if [ ! -f "$sass" ] || [ "$cubin" -nt "$sass" ] || [ "$NVDISASM" -nt "$sass" ]; then
  input="$cubin"
  if [ $patch = 1 ]; then
    # CUDA 11.8's reader wants the old ELF ABI header; the code itself is what ptxas 13 emitted.
    input="$out/tandem_kernels.sm_90.abi7.cubin"
    python3 - "$cubin" "$input" <<'EOF'
import struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
b[7], b[8] = 0x33, 7
struct.pack_into("<I", b, 0x30, 0x005A055A)   # sm_90 in the old e_flags layout
open(sys.argv[2], "wb").write(b)
EOF
  fi
  if ! "$NVDISASM" -c "$input" > "$sass.tmp" 2> "$out/disasm.log"; then
    # cuobjdump (same package) prints the same instructions; kernel_report.py reads both formats.
    cuobjdump="$(dirname "$NVDISASM")/cuobjdump"
    [ -x "$cuobjdump" ] && "$cuobjdump" -sass "$input" > "$sass.tmp" 2>> "$out/disasm.log" \
      || give_up "$NVDISASM could not disassemble $input: $(head -1 "$out/disasm.log")"
  fi
  mv "$sass.tmp" "$sass"
fi

args=(--ptxas-log "$log" --sass "$sass" --out "$out/kernel-report.md" --budgets "$root/native-build/kernel-budgets.tsv"
      --launch-plan "$out/launch-plan.tsv" --estimates-out "$out/kernel-estimates.tsv"
      --sources "Inputs: \`$("$NVCC" --version | tail -1)\` ptxas log of the fatbin build; SASS of the sm_90 cubin by nvdisasm \`$("$NVDISASM" --version | tail -1)\`$([ $patch = 1 ] && echo " (Debian bookworm nvidia-cuda-toolkit, ELF header patched)").")
if [ $write_budgets = 1 ]; then
  exec python3 "$root/native-build/kernel_report.py" "${args[@]}" --write-budgets "$root/native-build/kernel-budgets.tsv" "${pass[@]}"
fi
status=0
python3 "$root/native-build/kernel_report.py" "${args[@]}" "${pass[@]}" || status=$?
if [ $bench = 1 ]; then
  # kernel-estimates.tsv travels to the GPU machine with the working tree: gpu-check.sh sets it beside the
  # achieved bandwidth (the machine has no disassembler to make it there).
  mkdir -p "$root/bench" && cp "$out/kernel-report.md" "$out/kernel-estimates.tsv" "$root/bench/" \
    && echo "kernel-report: bench/kernel-report.md, bench/kernel-estimates.tsv"
fi
exit $status
