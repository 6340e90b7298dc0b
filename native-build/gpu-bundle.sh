#!/usr/bin/env bash
# Prepares what native-build/gpu-check.sh needs on the GPU machine, which has no JDK, no Maven and no network:
#   target/gpu-bundle/jre/        a jlink runtime of JDK 25 with the modules Tandem uses (stripped, zip-9)
#   target/gpu-bundle/lib/*.jar   main and test classes, runtime dependencies (JCuda without its unused natives)
#                                 and the JUnit console launcher
#   target/gpu-bundle.tgz         the same, packed: what a device run carries (gpu-check.sh unpacks it there)
# Run here (the script runs `mvn test-compile`). Maven runs online where the local repository lacks something (a fresh
# clone with an empty ~/.m2 works: dependencies, plugins and the JUnit console launcher are fetched once; extra Maven
# arguments, e.g. -Dmaven.repo.local=DIR, go in $TANDEM_MAVEN_ARGS). What travels to the device machine, the tracked working tree plus
# carried paths, must stay under 64 MiB: the folder alone is ~58 MiB, packed (target/gpu-bundle.tgz) ~35 MiB; models are not in it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/target/gpu-bundle"
JAVA_HOME="${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
cd "$root"
read -r -a maven_args <<< "${TANDEM_MAVEN_ARGS:-}"
mvn -B -q -ntp "${maven_args[@]}" test-compile dependency:copy-dependencies -DincludeScope=test -DoutputDirectory="$out/deps" >/dev/null
rm -rf "$out/lib" "$out/jre"
mkdir -p "$out/lib"
# The jar carries an sm_90-only fatbin (the 4-target one is ~20 MB of already-compressed cubins, too much to
# carry): gpu-check.sh builds its own for the device anyway and falls back to this one only when nvcc fails there.
fatbin90="$root/target/gpu-bundle-fatbin"
TANDEM_FATBIN_DIR="$fatbin90" TANDEM_CUDA_ARCHS="90" bash native-build/build-fatbin.sh >/dev/null
rm -rf "$fatbin90/jar" && mkdir -p "$fatbin90/jar" && cp -r target/classes/. "$fatbin90/jar/"
cp "$fatbin90/tandem_kernels.fatbin" "$fatbin90/tandem_kernels.fatbin.archs" "$fatbin90/tandem_kernels.fatbin.cuda" "$fatbin90/jar/native/"
(cd "$fatbin90/jar" && "$JAVA_HOME/bin/jar" --create --file "$out/lib/tandem.jar" .)
(cd target/test-classes && "$JAVA_HOME/bin/jar" --create --file "$out/lib/tandem-tests.jar" .)
for j in "$out"/deps/*.jar; do
  case "$(basename "$j")" in
    junit-*|opentest4j-*|apiguardian-*) ;;  # the console launcher below bundles JUnit
    # The GPU check runs the gpu tests and `tandem bench`: the server (Javalin, Jetty, Kotlin), chat templates
    # (Jinjava, Guava, ...) and plots (XChart) stay behind, which keeps the bundle under 64 MiB.
    javalin-*|jetty-*|kotlin-*|jakarta.*|jinjava-*|guava-*|failureaccess-*|listenablefuture-*|checker-qual-*|error_prone*|j2objc*|jsr305-*) ;;
    snakeyaml-*|jackson-dataformat-yaml-*|jackson-datatype-jdk8-*|commons-net-*|commons-lang3-*|javassist-*|derive4j-*|re2j-*|asm-*) ;;
    xchart-*|slf4j-*|jspecify-*|jetbrains-*|annotations-*|algebra-*|big-math-*|encode-*|hubspot-style-*|immutable*|java-ipv6-*) ;;
    # The server's tests drive it with the OpenAI SDK (its core jar alone is 72 MB) and /metrics uses Prometheus.
    openai-java-*|okhttp-*|okio-*|jsonschema-*|swagger-annotations-*|classmate-*|jackson-module-kotlin-*|jackson-datatype-jsr310-*|prometheus-metrics-*) ;;
    jcublas-natives-*)                       # only cuBLAS v2 (libJCublas2) is used
      tmp="$(mktemp -d)"; (cd "$tmp" && "$JAVA_HOME/bin/jar" xf "$j" && rm -f lib/libJCublas-* \
        && "$JAVA_HOME/bin/jar" --create --file "$out/lib/$(basename "$j")" .); rm -rf "$tmp" ;;
    jcuda-natives-*)                         # only libJCudaDriver is used
      tmp="$(mktemp -d)"; (cd "$tmp" && "$JAVA_HOME/bin/jar" xf "$j" && rm -f lib/libJNvPTXCompiler-* lib/libJNvrtc-* lib/libJCudaRuntime-* \
        && "$JAVA_HOME/bin/jar" --create --file "$out/lib/$(basename "$j")" .); rm -rf "$tmp" ;;
    *) cp "$j" "$out/lib/" ;;
  esac
done
# The console launcher of the JUnit Platform that junit-jupiter brings (1.x for JUnit 5.x), from the repository or
# fetched into it.
platform="$(ls "$out"/deps/junit-platform-engine-*.jar 2>/dev/null | head -1 | sed -E 's/.*junit-platform-engine-(.*)\.jar/\1/')"
mvn -B -q -ntp "${maven_args[@]}" dependency:copy -Dartifact="org.junit.platform:junit-platform-console-standalone:${platform:-1.14.1}" \
  -DoutputDirectory="$out/lib" >/dev/null
rm -rf "$out/deps"
"$JAVA_HOME/bin/jlink" --add-modules java.base,java.logging,java.management,java.xml,jdk.incubator.vector,jdk.unsupported,jdk.zipfs \
  --strip-debug --no-header-files --no-man-pages --compress=zip-9 \
  --output "$out/jre"
tar -czf "$out.tgz" -C "$(dirname "$out")" "$(basename "$out")"
tracked=$(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1)
packed=$(stat -c %s "$out.tgz")
mib() { echo $(( ($1 + 1048575) / 1048576 )); }
echo "gpu bundle: $out ($(mib "$(du -sb "$out" | cut -f1)") MiB), packed $out.tgz ($(mib "$packed") MiB);" \
  "with the tracked files ($(mib "$tracked") MiB) a device run carries $(mib $((packed + tracked))) MiB of 64 (carry: target/gpu-bundle.tgz)"
if [ $((packed + tracked)) -gt $((60 * 1048576)) ]; then
  echo "gpu-bundle: too big to carry (limit 64 MiB with the working tree; keep 4 MiB spare)" >&2
  exit 1
fi
