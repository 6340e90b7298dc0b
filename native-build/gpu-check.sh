#!/usr/bin/env bash
# On a machine with a GPU: builds the kernels for sm_90, runs the `gpu`-tagged tests on the bundle from
# native-build/gpu-bundle.sh, then a short benchmark (plain vs speculative on forged models), and writes the JUnit
# reports, the benchmark table (bench.txt) and a summary to the folder given as $1.
#   native-build/gpu-check.sh OUT              the GPU run
#   native-build/gpu-check.sh --rehearse OUT   the same steps here, running the CUDA tests on the host emulation
# Models come from TANDEM_SHARED (default ../shared); with none there, the model tests skip with a message.
# The benchmark's models are forged here (seeded): on the GPU a Llama-3.2-1B-shaped Q8_0 main model and its
# 2-layer draft; rehearsing, the tiny preset (the host emulation is slow). TANDEM_BENCH=0 skips the benchmark.
# The benchmark then runs once more in the kernel-profiling mode (tandem.kernelProfile: events around every launch)
# and writes kernels.txt: per kernel, launches, time, bytes moved and achieved GB/s against the device's measured
# device-to-device copy bandwidth.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
mode=gpu
if [ "${1:-}" = "--rehearse" ]; then mode=rehearse; shift; fi
out="${1:?usage: gpu-check.sh [--rehearse] OUT}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
bundle="${TANDEM_GPU_BUNDLE:-$root/target/gpu-bundle}"
[ -x "$bundle/jre/bin/java" ] || { echo "gpu-check: no bundle at $bundle (run native-build/gpu-bundle.sh first)" >&2; exit 2; }
{
  echo "gpu-check $(date -u +%Y-%m-%dT%H:%M:%SZ) mode=$mode"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || echo "no nvidia-smi"
} | tee "$out/summary.txt"

# Kernels for this GPU only (fast); the fatbin goes beside the classes on the class path.
native="$out/classpath/native"
mkdir -p "$native"
if [ "$mode" = gpu ]; then
  TANDEM_CUDA_ARCHS="90" bash "$root/native-build/build-fatbin.sh" | tee -a "$out/summary.txt"
fi
bash "$root/native-build/build-host.sh" | tee -a "$out/summary.txt"
cp "$root"/target/native/tandem_kernels.fatbin* "$root/target/native/libtandem_host_kernels.so" "$native/" 2>/dev/null || true
cp "$root/target/native/fatbin-build.log" "$out/" 2>/dev/null || true

cp_entries="$out/classpath"
for j in "$bundle"/lib/*.jar; do
  case "$(basename "$j")" in junit-platform-console-standalone-*) ;; *) cp_entries="$cp_entries:$j" ;; esac
done
if [ "$mode" = gpu ]; then select=(--include-tag gpu); else select=(--include-classname '.*(CudaPassContract|HostGpuDriver|Backends|CudaGraph|GreedyAcceptance|Nvtx)Test'); fi
set +e
"$bundle/jre/bin/java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xss8m \
  -Dtandem.shared="${TANDEM_SHARED:-$root/../shared}" -Dtandem.hostKernels="$native/libtandem_host_kernels.so" \
  -jar "$bundle"/lib/junit-platform-console-standalone-*.jar execute \
  --class-path "$cp_entries" --scan-class-path "$bundle/lib/tandem-tests.jar" "${select[@]}" \
  --reports-dir "$out/junit" --details summary --disable-banner 2>&1 | tee -a "$out/summary.txt"
status=${PIPESTATUS[0]}
set -e
echo "gpu-check: tests exit status $status; reports in $out/junit" | tee -a "$out/summary.txt"

if [ "${TANDEM_BENCH:-1}" != 0 ]; then
  tandem() {
    "$bundle/jre/bin/java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xss8m \
      -Dtandem.hostKernels="$native/libtandem_host_kernels.so" ${TANDEM_JAVA_OPTS:-} -cp "$cp_entries" dev.tandem.cli.Main "$@"
  }
  models="$out/models"
  mkdir -p "$models"
  if [ "$mode" = gpu ]; then
    backend=cuda tokens=64 lengths=2,4
    shape=(--hidden 2048 --layers 16 --heads 32 --kv-heads 8 --head-dim 64 --ffn 8192 --vocab 32000 --type q8_0 --tied)
  else
    backend=cuda-host tokens=4 lengths=2
    shape=(--preset tiny)
  fi
  set +e
  {
    tandem forge --quiet --out "$models/main.gguf" "${shape[@]}" &&
    tandem forge --quiet --draft-of "$models/main.gguf" --layers 2 --out "$models/draft.gguf" &&
    tandem bench --backend "$backend" --model "$models/main.gguf" --draft "$models/draft.gguf" \
      -n "$tokens" --draft-max "$lengths" --no-adaptive > "$out/bench.txt" &&
    TANDEM_JAVA_OPTS="-Dtandem.kernelProfile=$out/kernels.txt" \
      tandem bench --backend "$backend" --model "$models/main.gguf" --draft "$models/draft.gguf" \
      -n "$tokens" --draft-max "${lengths%%,*}" --no-adaptive > /dev/null &&
    [ -s "$out/kernels.txt" ]
  } 2>&1 | tee -a "$out/summary.txt"
  bench_status=${PIPESTATUS[0]}
  set -e
  rm -rf "$models"
  cat "$out/bench.txt" "$out/kernels.txt" 2>/dev/null | tee -a "$out/summary.txt"
  echo "gpu-check: benchmark exit status $bench_status; tables in $out/bench.txt and $out/kernels.txt (per-kernel bandwidth)" | tee -a "$out/summary.txt"
  [ "$status" -ne 0 ] || status=$bench_status
fi
exit "$status"
