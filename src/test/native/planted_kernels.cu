// Test-only kernels with planted bugs, built by native-build/build-sanitizers.sh into their own library and never
// into the production one. Each bug has a correct twin, so a test shows that the check catches the bug and passes
// the same kernel without it: PlantedBugsTest (AddressSanitizer for the read, the race check for the barrier).

// out[i] = in[i] + in[i + 1] over the n - 1 adjacent pairs of in[0..n). The bug lets thread n - 1 through too:
// it reads in[n], one element past the end.
template <bool OffByOne>
__device__ void adjacent_sums(const float* in, float* out, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    int pairs = OffByOne ? n : n - 1;
    if (i < pairs) out[i] = in[i] + in[i + 1];
}

extern "C" __global__ void planted_adjacent_sums(const float* in, float* out, int n) { adjacent_sums<false>(in, out, n); }
extern "C" __global__ void planted_adjacent_sums_off_by_one(const float* in, float* out, int n) {
    adjacent_sums<true>(in, out, n);
}

// One block of 128 threads: out[t] = in[t] + in[127 - t], the partner's value passed through shared memory. Without
// the barrier a thread may read its partner's slot before the partner has written it; which threads do depends on
// the order the block's threads run in.
constexpr int kMirrorThreads = 128;

template <bool Barrier>
__device__ void mirrored_sums(const float* in, float* out) {
    __shared__ float slots[kMirrorThreads];
    int t = threadIdx.x;
    slots[t] = in[t];
    if (Barrier) __syncthreads();
    out[t] = slots[t] + slots[kMirrorThreads - 1 - t];
}

extern "C" __global__ void planted_mirrored_sums(const float* in, float* out) { mirrored_sums<true>(in, out); }
extern "C" __global__ void planted_mirrored_sums_no_barrier(const float* in, float* out) { mirrored_sums<false>(in, out); }

TANDEM_EXPORT(planted_adjacent_sums, (const float* in, float* out, int n), (in, out, n))
TANDEM_EXPORT(planted_adjacent_sums_off_by_one, (const float* in, float* out, int n), (in, out, n))
TANDEM_EXPORT(planted_mirrored_sums, (const float* in, float* out), (in, out))
TANDEM_EXPORT(planted_mirrored_sums_no_barrier, (const float* in, float* out), (in, out))
