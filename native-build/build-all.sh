#!/usr/bin/env bash
# What Maven runs (process-classes): the host-emulation library, the emulated CUDA driver over it (for the test
# JVMs only), the CUDA fatbin where nvcc exists, and the NVTX shim where the nvtx3 headers exist.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
"$here/build-host.sh"
"$here/build-emulated-driver.sh"
"$here/build-fatbin.sh"
"$here/build-nvtx.sh"
