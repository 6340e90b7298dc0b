#!/usr/bin/env bash
# What Maven runs (process-classes): the host-emulation library, then the CUDA fatbin where nvcc exists.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
"$here/build-host.sh"
"$here/build-fatbin.sh"
