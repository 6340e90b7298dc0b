#!/usr/bin/env bash
# JMH benchmark of the CPU matmul kernels, one row per kernel shape (tensor type x activation rows x threads):
# src/test/java/dev/tandem/runtime/cpu/MatmulBenchmark.java. Builds the test classes, runs JMH (its log goes to
# stderr, its CSV to target/jmh/matmul.csv) and prints a Markdown table on stdout.
#
#   nice -n 19 bench/jmh-kernels.sh > bench/jmh-kernels.md          # all 18 shapes: about 4 minutes
#   bench/jmh-kernels.sh -p type=Q8_0 -p rows=1 -wi 1 -i 1 -w 1 -r 1   # any JMH options narrow or shorten it
#
# Defaults come from the benchmark's annotations (3 warm-up and 5 measured iterations of 1 s, one fork).
# Set MVN_OFFLINE=1 to build with mvn -o.
set -euo pipefail
home="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$home"

java_home="${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
if ! "$java_home/bin/java" -version 2>&1 | grep -qE 'version "(2[5-9]|[3-9][0-9])'; then
  echo "jmh-kernels.sh: JDK 25 or newer is required (set JAVA_HOME)" >&2
  exit 1
fi
export JAVA_HOME="$java_home"

mkdir -p target/jmh
mvn -B -q -ntp ${MVN_OFFLINE:+-o} test-compile dependency:build-classpath \
    -Dmdep.includeScope=test -Dmdep.outputFile=target/jmh/classpath.txt >&2
csv=target/jmh/matmul.csv
LC_ALL=C "$JAVA_HOME/bin/java" --add-modules jdk.incubator.vector \
    -cp "target/test-classes:target/classes:$(cat target/jmh/classpath.txt)" \
    org.openjdk.jmh.Main 'dev.tandem.runtime.cpu.MatmulBenchmark' "$@" -rf csv -rff "$csv" >&2

# The matrix shape, as the benchmark declares it.
src=src/test/java/dev/tandem/runtime/cpu/MatmulBenchmark.java
rows=$(sed -n 's/.*int ROWS = \([0-9]*\);.*/\1/p' "$src")
columns=$(sed -n 's/.*int COLUMNS = \([0-9]*\);.*/\1/p' "$src")

echo "MatmulBenchmark: a ${rows} x ${columns} weight matrix; one op = x.load + CpuMatrix.multiply;"
echo "GB/s = weight bytes / time; relative = time / time of the 1-row run of the same type and threads."
echo
echo "| type | rows | threads | ms/op | ± (99.9 %) | GB/s of weights | relative to 1 row |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
awk -F, -v R="$rows" -v C="$columns" '
  BEGIN {
    # bytes per block / elements per block of each type (dev.tandem.model.TensorType)
    split("F32 4 1 F16 2 1 BF16 2 1 Q4_0 18 32 Q8_0 34 32 Q4_K 144 256 Q5_K 176 256 Q6_K 210 256", s, " ")
    for (i = 1; i < 24; i += 3) { blockBytes[s[i]] = s[i + 1]; blockSize[s[i]] = s[i + 2] }
  }
  { gsub(/["\r]/, "") }   # JMH writes quoted fields and CRLF line ends
  NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
  {
    t = $col["Param: type"]; r = $col["Param: rows"]; th = $col["Param: threads"]
    if (!(t in typeOrder)) typeOrder[t] = ++types
    if (!(th in threadOrder)) threadOrder[th] = ++threadCounts
    n++; T[n] = t; Rw[n] = r; Th[n] = th; ms[n] = $col["Score"]; err[n] = $col["Score Error (99.9%)"]
    if (r == 1) base[t, th] = ms[n]
  }
  END {
    for (i = 1; i <= n; i++) {
      bytes = R * C / blockSize[T[i]] * blockBytes[T[i]]
      rel = ((T[i], Th[i]) in base) ? sprintf("%.2f", ms[i] / base[T[i], Th[i]]) : "-"
      e = (err[i] == "NaN" || err[i] == "") ? "-" : sprintf("%.3f", err[i])
      printf "%d %d %d | %s | %d | %d | %.3f | %s | %.1f | %s |\n", typeOrder[T[i]], threadOrder[Th[i]], Rw[i],
             T[i], Rw[i], Th[i], ms[i], e, bytes / (ms[i] / 1e3) / 1e9, rel
    }
  }' "$csv" | sort -k1,1n -k2,2n -k3,3n | cut -d' ' -f4-
