/*
 * Tandem's NVTX shim: three plain C entry points over the header-only NVTX 3 API, so that Java (FFM) can name
 * ranges without a libnvToolsExt. NVTX 3 calls are inline: each asks for the tool injected by a profiler
 * (Nsight Systems sets NVTX_INJECTION64_PATH) the first time and is a no-op without one.
 */
#include <nvtx3/nvToolsExt.h>

#define EXPORT __attribute__((visibility("default")))

/* Opens a range named message on the calling thread; returns its nesting depth (negative without a profiler). */
EXPORT int tandem_nvtx_push(const char *message) { return nvtxRangePushA(message); }

/* Closes the calling thread's innermost range. */
EXPORT int tandem_nvtx_pop(void) { return nvtxRangePop(); }

/* An instant event named message. */
EXPORT void tandem_nvtx_mark(const char *message) { nvtxMarkA(message); }
