#!/usr/bin/env bash
# On a machine with a GPU: builds the kernels for sm_90, runs the `gpu`-tagged tests on the bundle from
# native-build/gpu-bundle.sh, and writes the JUnit reports and a summary to the folder given as $1.
#   native-build/gpu-check.sh OUT              the GPU run
#   native-build/gpu-check.sh --rehearse OUT   the same steps here, running the CUDA tests on the host emulation
# Models come from TANDEM_SHARED (default ../shared); with none there, the model tests skip with a message.
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
if [ "$mode" = gpu ]; then select=(--include-tag gpu); else select=(--include-classname '.*(CudaPassContract|HostGpuDriver|Backends)Test'); fi
set +e
"$bundle/jre/bin/java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xss8m \
  -Dtandem.shared="${TANDEM_SHARED:-$root/../shared}" -Dtandem.hostKernels="$native/libtandem_host_kernels.so" \
  -jar "$bundle"/lib/junit-platform-console-standalone-*.jar execute \
  --class-path "$cp_entries" --scan-class-path "$bundle/lib/tandem-tests.jar" "${select[@]}" \
  --reports-dir "$out/junit" --details summary --disable-banner 2>&1 | tee -a "$out/summary.txt"
status=${PIPESTATUS[0]}
set -e
echo "gpu-check: tests exit status $status; reports in $out/junit" | tee -a "$out/summary.txt"
exit "$status"
