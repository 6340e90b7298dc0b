#!/usr/bin/env bash
# The GPU check: one run on a lent GPU machine (no JDK, no network, no ../shared) from the bundle that
# native-build/gpu-bundle.sh prepares (jlink runtime + jars in target/gpu-bundle/), in the git working tree
# (test-models/ is tracked; the bundle travels as target/gpu-bundle.tgz, unpacked here when the folder is missing).
# Into the folder given as its argument it writes 7 files (a device run brings back at most 8): summary.txt,
# gpu-bench.md, tests.txt, junit.xml, fatbin-build.log, bench.txt, kernels.txt; the rest stays in
# target/gpu-check-work/, the models in target/gpu-check-models/ (deleted).
#   native-build/gpu-check.sh OUT              the GPU run (--backend cuda)
#   native-build/gpu-check.sh --rehearse OUT   the same steps here, --backend cuda over the emulated CUDA driver
#                                             (native-build/emulated-driver/: JCuda, the bundle's natives and jlink
#                                             runtime as on the device; the kernels on the host emulation)
#
# Steps, each under a time limit, the whole under one deadline (TANDEM_GPU_CHECK_SECONDS, default 480 on the GPU;
# while Q8_0 is benchmarked, 170 s of it stay reserved for BF16):
#  1. fatbin for sm_90 only (nvcc; if that fails, the bundle's full fatbin is used and the run is marked failed)
#  2. probe: `tandem generate --backend cuda` on the tracked KJV pair; if the device is unusable, stop (exit 3)
#  3. the `gpu`-tagged tests (JCudaDeviceTest) through the JUnit console launcher on the bundle's test jar: GPU
#     against the CPU backend computed here on the same weights, greedy speculative == plain, batch invariance.
#     Any failure, skip or abort fails the check (rehearsing, they run over the emulated driver, on fewer tokens;
#     the benchmark's model is a 2-layer, 128-wide cut of the 1B preset: ~2.5 min on 2 loaded cores).
#  4. benchmark (TANDEM_BENCH=0 skips it), for Q8_0 then BF16: forge the main model, cut its draft, `tandem bench`
#     with CUDA graphs on (-Dtandem.cudaGraphs=true), then with graphs off at one draft length if time is left,
#     then a short `tandem generate` in the kernel-profiling mode (graphs off: launches inside a graph are not
#     profiled) for the per-kernel bandwidth; models are deleted after each type.
#  5. ONE table, gpu-bench.md: per model type, the device copy bandwidth, each kernel's achieved GB/s against it
#     and beside native-build/kernel-report.sh's static estimate for this GPU (kernel-estimates.tsv from
#     target/kernel-report/, else the copy in bench/; the estimate calibrates against the measurement),
#     plain and speculative tok/s, the speed-up, acceptance, outputs equal to plain. A later session commits it
#     to bench/.
# Exit status: 0 only when every step passed (3: no usable device; 1: anything else failed or was cut).
#
# Models. Main: the `llama-3.1-8b` preset (hidden 4096, 32 layers, 32/8 heads of 128, FFN 14336, vocab 128256,
# untied, RoPE θ 500000 with Llama 3 scaling, factor 8), forged in Q8_0 (8.5 GB) and in BF16 (16.1 GB), with
# --draft-layers 3 --agreement-eps $EPS. Draft: `forge --draft-of` = the main's embedding, first 3 layers, norm and
# head (1.8 / 3.4 GB). Why not a Llama-3.2-1B-shaped draft (hidden 2048, 16 layers; preset `llama-3.2-1b`): forged
# weights are random, so a separately forged 1B shares nothing with the main and would be accepted ~never (no
# speed-up to measure); forge makes agreement only by cutting the draft from the main. The 3-layer cut costs what
# a 1B costs, which is what the speed-up depends on: it reads 3 x 218 M layer weights + the 525 M head = 1.18 G
# weights per token, Llama-3.2-1B reads 16 x 61 M + its 263 M tied head = 1.24 G (the main: 7.5 G). EPS (scale of
# the main's layers 3..31 output projections) is 0.03: on a narrow proxy of this shape on the CPU (hidden 256,
# 32 layers, 4/1 heads, untied, vocabulary 128256, 3-layer draft) acceptance at draft-max 3 was 27 % at eps 0.1,
# 47 % at 0.05, 80 % at 0.03 (the untied head gives the pair no shared shortcut: the larger eps values the
# README's tied 3B pairs use accept ~0 % here). Override with TANDEM_EPS.
#
# Time on the GPU machine (16 cores, H200), estimated from forge's CPU cost measured on the development machine
# (llama-3.2-1b preset, 1.24 G weights: BF16 8.5 CPU-s = 146 M weights per CPU-second, Q8_0 11.7 CPU-s = 105 M/s;
# forging is parallel over rows, writing is sequential): forging 8.03 G weights takes ~55 (BF16) / ~76 (Q8_0)
# CPU-seconds, ~5-8 s each on 16 cores plus writing 16 / 8.5 GB (~5-10 s into the page cache; 128 GB RAM), the
# draft cuts ~2-4 s: under a minute for all forging. Each bench process uploads main + draft (~20 GB for BF16
# through an 8 MB pinned buffer, ~3 GB/s: ~7 s). 6 prompts x 64 tokens at 3 draft lengths, plain and speculative,
# is ~2,300 generated tokens per type: at the ~150 tok/s an 8B BF16 model allows at ~2.5 TB/s, ~20 s. Expected
# total ~4 minutes (fatbin ~30 s, tests ~30 s, per type ~1.5 min); every step has a time limit and the whole is
# cut at the deadline (480 s), after which the table is still written from what finished.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
mode=gpu
if [ "${1:-}" = "--rehearse" ]; then mode=rehearse; shift; fi
out="${1:?usage: gpu-check.sh [--rehearse] OUT}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
bundle="${TANDEM_GPU_BUNDLE:-$root/target/gpu-bundle}"
java="$bundle/jre/bin/java"
if [ ! -x "$java" ] && [ -f "$bundle.tgz" ]; then
  tar -xzf "$bundle.tgz" -C "$(dirname "$bundle")" || { echo "gpu-check: cannot unpack $bundle.tgz" >&2; exit 2; }
fi
[ -x "$java" ] || { echo "gpu-check: no bundle at $bundle or $bundle.tgz (run native-build/gpu-bundle.sh first)" >&2; exit 2; }
work="$root/target/gpu-check-work"
rm -rf "$work"
mkdir -p "$work"
summary="$out/summary.txt"
: > "$summary"
note() { echo "$*" | tee -a "$summary"; }
failures=()
failed() { failures+=("$1"); note "gpu-check: FAILED: $1"; }

if [ "$mode" = gpu ]; then
  backend=cuda limit="${TANDEM_GPU_CHECK_SECONDS:-480}"
  shape=(--preset llama-3.1-8b) draft_layers=3 eps="${TANDEM_EPS:-0.03}"
  tokens=64 lengths=2,3,4 off_length=3 profile_tokens=64 off_after=100 type_seconds=170 embedding=$((128256 * 4096))
  prompts=("In the beginning God created" "And it came to pass" "The LORD is my shepherd"
           "And the LORD spake unto Moses, saying," "Blessed are the" "Thus saith the LORD")
else
  # The same steps on shapes the host emulation runs in seconds: the 1B preset (Llama 3 RoPE scaling) made tiny;
  # --backend cuda, through JCuda, over the emulated driver built below (only this script's JVMs are given it).
  backend=cuda limit="${TANDEM_GPU_CHECK_SECONDS:-1800}"
  shape=(--preset llama-3.2-1b --hidden 128 --layers 2 --heads 2 --kv-heads 1 --head-dim 64 --ffn 256 --vocab 512 --untied)
  draft_layers=1 eps="${TANDEM_EPS:-0.03}"
  tokens=4 lengths=2,3 off_length=2 profile_tokens=4 off_after=0 type_seconds=0 embedding=$((512 * 128))
  prompts=("In the beginning God created" "Blessed are the")
fi
deadline=$(( $(date +%s) + limit ))
reserve=0   # seconds kept back for the steps after the current one (the benchmark's later model types)
left() { echo $(( deadline - $(date +%s) - reserve )); }
# within SECONDS CMD...: CMD under a limit of SECONDS, shortened to what the deadline leaves (status 124 when cut).
within() {
  local s=$1; shift
  local l=$(( $(left) - 10 ))
  [ "$l" -lt "$s" ] && s=$l
  if [ "$s" -lt 5 ]; then echo "gpu-check: no time left for: $*" >&2; return 124; fi
  timeout --kill-after=10 "$s" "$@"
}

note "gpu-check $(date -u +%Y-%m-%dT%H:%M:%SZ) mode=$mode backend=$backend deadline ${limit}s; $(nproc) cores, $(free -g | awk '/Mem:/ {print $2 " GB"}') RAM, $(df -h "$root" | awk 'NR==2 {print $4}') disk free"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee -a "$summary"
else
  note "no nvidia-smi"
fi
device="$(command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"
[ -n "$device" ] || device="emulated CUDA driver (host emulation) on $(nproc) CPU cores"

# 1. Kernels: the sm_90 fatbin (GPU) or the host-emulation library (rehearsal), first on the class path.
native="$work/classpath/native"
mkdir -p "$native"
if [ "$mode" = gpu ]; then
  t0=$(date +%s)
  if within 240 env TANDEM_CUDA_ARCHS="90" bash native-build/build-fatbin.sh 2>&1 | tee -a "$summary" && [ "$(cat target/native/tandem_kernels.fatbin.archs 2>/dev/null)" = "sass 90 ptx 90" ]; then
    cp target/native/tandem_kernels.fatbin target/native/tandem_kernels.fatbin.cuda target/native/tandem_kernels.fatbin.archs "$native/"
    note "fatbin for sm_90 built in $(( $(date +%s) - t0 )) s"
  else
    failed "fatbin for sm_90 (nvcc missing or failed; the bundle's fatbin, $(unzip -p "$bundle/lib/tandem.jar" native/tandem_kernels.fatbin.archs 2>/dev/null || echo "targets unknown"), is used)"
  fi
  cp target/native/fatbin-build.log "$out/" 2>/dev/null || true
else
  bash native-build/build-host.sh 2>&1 | tee -a "$summary"
  cp target/native/libtandem_host_kernels.so "$native/" || failed "host-emulation library"
  # The emulated libcuda.so.1 and libcublas.so.12, their stubs generated from the bundle's own JCuda natives.
  emulated="$work/emulated-driver"
  TANDEM_JCUDA_NATIVES="$bundle/lib" TANDEM_EMULATED_DRIVER_DIR="$emulated" bash native-build/build-emulated-driver.sh 2>&1 | tee -a "$summary"
  [ -f "$emulated/libcuda.so.1" ] || failed "emulated CUDA driver"
fi

cp="$work/classpath"
for j in "$bundle"/lib/*.jar; do
  case "$(basename "$j")" in junit-platform-console-standalone-*) ;; *) cp="$cp:$j" ;; esac
done
jvm=(--add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xss8m -Dtandem.hostKernels="$native/libtandem_host_kernels.so"
     -Dtandem.nativeDir="$work/jcuda-natives")
[ "$mode" = rehearse ] && jvm+=(-Dtandem.emulatedCuda="$emulated")
# tandem SECONDS [-Dprop ...] ARGS...: the CLI on the bundle, within SECONDS.
tandem() {
  local s=$1 props=()
  shift
  while [ $# -gt 0 ] && [[ "$1" == -D* ]]; do props+=("$1"); shift; done
  within "$s" "$java" "${jvm[@]}" "${props[@]}" -cp "$cp" dev.tandem.cli.Main "$@"
}

finish() {
  if [ ${#failures[@]} -eq 0 ]; then
    note "gpu-check: PASSED (mode $mode, $(( limit - $(left) )) s); results in $out"
    exit 0
  fi
  note "gpu-check: ${#failures[@]} failure(s): $(IFS=';'; echo "${failures[*]}")"
  exit "${1:-1}"
}

# 2. Probe: a few greedy tokens of the KJV main model on the backend; without a usable device, stop here.
note "probe: tandem generate --backend $backend on test-models/kjv-main-q8_0.gguf"
if ! tandem 120 generate --backend "$backend" -m test-models/kjv-main-q8_0.gguf -p "In the beginning God created" -n 8 --temperature 0 2>&1 | tee -a "$summary"; then
  failed "probe: --backend $backend does not run (see the lines above)"
  finish 3
fi

# 3. The gpu-tagged tests.
within 300 "$java" "${jvm[@]}" -jar "$bundle"/lib/junit-platform-console-standalone-*.jar execute \
  --class-path "$cp" --scan-class-path "$bundle/lib/tandem-tests.jar" --include-tag gpu \
  --reports-dir "$work/junit" --details tree --disable-banner --disable-ansi-colors > "$out/tests.txt" 2>&1
test_status=$?
cp "$work/junit/TEST-junit-jupiter.xml" "$out/junit.xml" 2>/dev/null || true
count() { grep -oE "[0-9]+ tests $1" "$out/tests.txt" | grep -oE "^[0-9]+" | head -1; }
found=$(count found) ok=$(count successful)
grep -vE "^WARNING" "$out/tests.txt" | tail -40 | tee -a "$summary"
if [ "$test_status" -ne 0 ] || [ -z "$found" ] || [ "$found" -eq 0 ] || [ "$ok" != "$found" ]; then
  failed "gpu tests: exit $test_status, ${ok:-0} of ${found:-0} successful (skipped, aborted or failed tests count as failures; $out/tests.txt)"
else
  note "gpu tests: all $found successful"
fi

# 4. Benchmark, per model type.
models="$root/target/gpu-check-models"
trap 'rm -rf "$models"' EXIT
printf '%s\n' "${prompts[@]}" > "$work/prompts.txt"

# bench_type TYPE: forge, bench with graphs on (and off), profile; results in $work/*-TYPE.*
bench_type() {
  local t=$1 main="$models/main-$1.gguf" draft="$models/draft-$1.gguf" t0
  rm -rf "$models"; mkdir -p "$models"
  t0=$(date +%s)
  if ! tandem 180 forge --quiet --out "$main" "${shape[@]}" --type "$t" --draft-layers "$draft_layers" --agreement-eps "$eps" 2>&1 | tee -a "$summary" \
     || ! tandem 60 forge --quiet --draft-of "$main" --out "$draft" 2>&1 | tee -a "$summary"; then
    failed "forge $t"; return
  fi
  note "forged $t main + draft in $(( $(date +%s) - t0 )) s"
  stat -c %s "$main" > "$work/main-bytes-$t.txt"
  stat -c %s "$draft" > "$work/draft-bytes-$t.txt"
  t0=$(date +%s)
  tandem 180 -Dtandem.cudaGraphs=true bench --backend "$backend" -m "$main" -d "$draft" -n "$tokens" --draft-max "$lengths" \
    --no-adaptive --prompts "$work/prompts.txt" > "$work/bench-$t.txt" 2> "$work/bench-$t.log" \
    || failed "bench $t with CUDA graphs (status $?; $work/bench-$t.log)"
  note "bench $t (CUDA graphs on) in $(( $(date +%s) - t0 )) s"
  grep -E "^draft_max" "$work/bench-$t.log" | tee -a "$summary"
  if [ "$(left)" -gt "$off_after" ]; then
    t0=$(date +%s)
    tandem 120 -Dtandem.cudaGraphs=false bench --backend "$backend" -m "$main" -d "$draft" -n "$tokens" --draft-max "$off_length" \
      --no-adaptive --prompts "$work/prompts.txt" > "$work/bench-$t-nographs.txt" 2> "$work/bench-$t-nographs.log" \
      || note "bench $t without CUDA graphs cut or failed (status $?; optional)"
    note "bench $t (CUDA graphs off) in $(( $(date +%s) - t0 )) s"
  else
    note "bench $t without CUDA graphs skipped: $(left) s left"
  fi
  t0=$(date +%s)
  tandem 120 -Dtandem.cudaGraphs=false -Dtandem.kernelProfile="$work/kernels-$t.txt" generate --backend "$backend" -m "$main" -d "$draft" \
    --draft-max "$off_length" --draft-p-min 0 --temperature 0 -n "$profile_tokens" -p "${prompts[0]}" > /dev/null 2> "$work/profile-$t.log"
  if [ -s "$work/kernels-$t.txt" ]; then
    note "kernel profile $t in $(( $(date +%s) - t0 )) s"
    cat "$work/kernels-$t.txt" >> "$summary"
  else
    failed "kernel profile $t ($work/profile-$t.log)"
  fi
  rm -rf "$models"
}

if [ "${TANDEM_BENCH:-1}" != 0 ]; then
  types=(q8_0 bf16)
  for i in "${!types[@]}"; do
    reserve=$(( (${#types[@]} - i - 1) * ${type_seconds} ))   # each later type keeps its share of the deadline
    bench_type "${types[$i]}"
  done
  reserve=0
  : > "$out/kernels.txt"
  for t in "${types[@]}"; do
    for f in bench-$t.txt bench-$t.log bench-$t-nographs.txt bench-$t-nographs.log; do
      [ -f "$work/$f" ] && { echo "== $f"; cat "$work/$f"; }
    done
    [ -f "$work/kernels-$t.txt" ] && { echo "== $t"; cat "$work/kernels-$t.txt"; } >> "$out/kernels.txt"
  done > "$out/bench.txt"
  # The static estimates (made where the disassembler is: target/ when kernel-report.sh ran here, else the copy
  # committed to bench/) go beside each kernel's achieved bandwidth.
  estimates=""
  for f in target/kernel-report/kernel-estimates.tsv bench/kernel-estimates.tsv; do [ -f "$f" ] && estimates="$root/$f" && break; done
  TANDEM_KERNEL_ESTIMATES="$estimates" bash native-build/gpu-bench-table.sh "$work" "$device" "$mode, ${shape[*]} --draft-layers $draft_layers --agreement-eps $eps, draft: its first $draft_layers layers" \
    "${#prompts[@]}" "$tokens" "$embedding" "${types[@]}" \
    > "$out/gpu-bench.md" || failed "table"
  cat "$out/gpu-bench.md" | tee -a "$summary"
fi
finish
