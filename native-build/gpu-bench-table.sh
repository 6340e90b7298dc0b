#!/usr/bin/env bash
# The one table of native-build/gpu-check.sh, in Markdown, from the files its benchmark left in OUT:
#   gpu-bench-table.sh OUT DEVICE SETUP PROMPTS TOKENS EMBEDDING_ELEMENTS TYPE...
# per TYPE (one column each): main-bytes-TYPE.txt, draft-bytes-TYPE.txt, bench-TYPE.log / .txt (CUDA graphs on),
# bench-TYPE-nographs.log (off), kernels-TYPE.txt (KernelProfile's table). Missing files give empty cells, so a
# run cut at its deadline still reports what finished. Speed rows come from `tandem bench`'s progress lines
# ("draft_max K: plain P t/s, speculative S t/s (Xx), acceptance A%"), printed as each draft length finishes.
# TANDEM_KERNEL_ESTIMATES: kernel-estimates.tsv of native-build/kernel-report.sh; each kernel row then shows the
# static estimate for this GPU (H100 or H200 in DEVICE) at R = 1 beside the achieved bandwidth, to calibrate it.
set -uo pipefail
out=$1 device=$2 setup=$3 prompts=$4 tokens=$5 embedding=$6
shift 6
types=("$@")

# rows TYPE: "label<TAB>cell" lines, in table order.
rows() {
  local t=$1 main draft copy best
  main=$(cat "$out/main-bytes-$t.txt" 2>/dev/null || echo 0)
  draft=$(cat "$out/draft-bytes-$t.txt" 2>/dev/null || echo 0)
  copy=$(sed -n 's/^device copy bandwidth: \([0-9.]*\) GB\/s.*/\1/p' "$out/kernels-$t.txt" 2>/dev/null | head -1)
  local gpu=""
  case "$device" in *H200*) gpu="H200" ;; *H100*) gpu="H100 SXM" ;; esac
  awk -v main="$main" -v draft="$draft" -v copy="${copy:-0}" -v emb="$embedding" -v t="$t" \
      -v estimates="${TANDEM_KERNEL_ESTIMATES:-}" -v gpu="$gpu" \
      -v benchlog="$out/bench-$t.log" -v table="$out/bench-$t.txt" -v off="$out/bench-$t-nographs.log" -v kernels="$out/kernels-$t.txt" '
    function size(bytes) { return bytes >= 1e8 ? sprintf("%.2f GB", bytes / 1e9) : sprintf("%.2f MB", bytes / 1e6) }
    function progress(file, rows,   line, n, f) {
      n = 0
      while ((getline line < file) > 0) {
        if (line !~ /^draft_max [0-9]+: plain /) continue
        split(line, f, / +/)   # draft_max K: plain P t/s, speculative S t/s (Xx), acceptance A%
        gsub(/[(x),]/, "", f[9])
        n++; rows[n, "k"] = f[2] + 0; rows[n, "plain"] = f[4] + 0; rows[n, "spec"] = f[7] + 0; rows[n, "x"] = f[9] + 0; rows[n, "acc"] = f[11] + 0
      }
      close(file)
      return n
    }
    BEGIN {
      OFS = "\t"
      bytesPerElement = t == "bf16" ? 2 : t == "q8_0" ? 34 / 32 : t == "f16" ? 2 : 4
      perToken = main - emb * bytesPerElement       # every weight but the embedding (one row gathered) is read per token
      print "main / draft file", (main > 0 ? size(main) " / " size(draft) : "")
      print "device copy bandwidth (64 MiB device-to-device, read + write)", (copy > 0 ? sprintf("%.0f GB/s", copy) : "")
      n = progress(benchlog, r)
      best = 0
      for (i = 1; i <= n; i++) if (best == 0 || r[i, "x"] + 0 > r[best, "x"] + 0) best = i
      plain = 0; for (i = 1; i <= n; i++) plain += r[i, "plain"]; if (n > 0) plain /= n
      print "plain decoding, CUDA graphs (mean of the " n " interleaved runs)", (n > 0 ? sprintf("%.1f tok/s", plain) : "")
      print "weights read per plain token, implied bandwidth", (n > 0 && perToken > 0 ? sprintf("%s, %.3g GB/s%s", size(perToken), plain * perToken / 1e9, copy > 0 ? sprintf(" (%.0f%% of copy)", 100 * plain * perToken / 1e9 / copy) : "") : "")
      if (best > 0) {
        k = r[best, "k"]; identical = ""; mean = ""
        while ((getline line < table) > 0) {
          split(line, c, /[ \t]+/)
          if (c[1] == k && c[7] ~ /\//) { mean = c[6]; identical = c[7] }   # k plain spec speed-up accepted mean identical
        }
        print "speculative (draft-ahead), best draft length", sprintf("%.1f tok/s at draft-max %s", r[best, "spec"], k)
        print "speed-up over plain", sprintf("**%.2fx**", r[best, "x"])
        print "acceptance, mean accepted per pass", sprintf("%.1f %%%s", r[best, "acc"], mean != "" ? ", " mean : "")
        print "speculative output equal to plain (prompts)", identical
        all = ""
        for (i = 1; i <= n; i++) all = all (i > 1 ? "; " : "") sprintf("k=%s %.2fx, %.0f %%", r[i, "k"], r[i, "x"], r[i, "acc"])
        print "every draft length: speed-up, acceptance", all
      } else {
        print "speculative (draft-ahead), best draft length", ""
        print "speed-up over plain", ""
      }
      m = progress(off, o)
      print "CUDA graphs off: plain, speculative", (m > 0 ? sprintf("%.1f, %.1f tok/s (%.2fx at draft-max %s)", o[1, "plain"], o[1, "spec"], o[1, "x"], o[1, "k"]) : "")
      # Static estimates for this GPU and type at R = 1: kernel type rows gpu gbps_800ns gbps_600ns.
      if (estimates != "" && gpu != "") {
        while ((getline line < estimates) > 0) {
          if (line ~ /^#/) continue
          split(line, e, "\t")
          if (e[2] == t && e[3] == 1 && e[4] == gpu) estimate[e[1]] = e[5] "-" e[6]
        }
        close(estimates)
      }
      # KernelProfile rows: kernel launches total_ms mean_us bytes/launch GB/s of_copy (slowest total first).
      while ((getline line < kernels) > 0) {
        split(line, f, /[ \t]+/)
        if (line ~ /^device copy/ || f[1] == "kernel" || f[2] !~ /^[0-9]+$/) continue
        cell = (f[6] != "-" ? f[6] " GB/s (" f[7] ")" : "traffic unknown") sprintf(", %s us x %s", f[4], f[2])
        if (f[1] in estimate) cell = cell ", estimate " estimate[f[1]] " GB/s"
        print "kernel `" f[1] "`: achieved (of copy), mean time x launches", cell
      }
    }'
}

for t in "${types[@]}"; do rows "$t" > "$out/rows-$t.tsv"; done

echo "# GPU check benchmark: $device, $(date -u +%Y-%m-%d)"
echo
echo "Setup: $setup. $prompts prompts x $tokens tokens, greedy, plain and speculative interleaved prompt by prompt"
echo "(\`tandem bench --no-adaptive\`); CUDA graphs on (-Dtandem.cudaGraphs=true) unless a row says off. Kernel rows: one"
echo "\`tandem generate\` with the draft in the kernel-profiling mode (events around every launch, graphs off); bytes are"
echo "each kernel's reads and writes from its arguments (attention's depend on positions only the device sees)."
if [ -n "${TANDEM_KERNEL_ESTIMATES:-}" ]; then
  echo "Estimates: the static roofline of \`native-build/kernel-report.sh\` (${TANDEM_KERNEL_ESTIMATES#"$PWD/"}) for this GPU, weights read"
  echo "once per pass at R = 1 on the 8B shape, at 800-600 ns load latency; attention's counts K/V once per query head."
fi
echo
printf '| measure |'; for t in "${types[@]}"; do printf ' %s |' "${t^^}"; done; echo
printf '| --- |'; for t in "${types[@]}"; do printf ' ---: |'; done; echo
# Labels in order of first appearance over the types; one cell per type ("-" where that type has no such row).
awk -F '\t' -v n="${#types[@]}" '
  FNR == 1 { col++ }
  { if (!($1 in seen)) { seen[$1] = 1; order[++labels] = $1 } cell[$1, col] = $2 }
  END {
    for (i = 1; i <= labels; i++) {
      line = "| " order[i] " |"
      for (c = 1; c <= n; c++) line = line " " ((order[i], c) in cell ? cell[order[i], c] : "-") " |"
      print line
    }
  }' $(for t in "${types[@]}"; do echo "$out/rows-$t.tsv"; done)
