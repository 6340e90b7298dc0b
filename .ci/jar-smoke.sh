#!/usr/bin/env bash
# After `mvn package`: the packaged jar, run the way users run it (./tandem), builds an engine over the bundled
# KJV model and generates. The tests run on Maven's test classpath, which also holds test-scoped libraries that the
# packaged jar lacks; this catches a runtime library left at test scope (it happened: jackson-dataformat-yaml,
# which chat templates need, so every engine-building command — serve included — died at startup).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! out=$(./tandem bench -m test-models/kjv-main-q8_0.gguf --draft ngram --parallel 1 -n 2 -t 1 --backend cpu 2>&1); then
  echo "jar smoke: 'tandem bench --parallel 1' (an engine built from target/tandem.jar) failed:" >&2
  echo "$out" >&2
  exit 1
fi
echo "jar smoke: target/tandem.jar built an engine and generated"
