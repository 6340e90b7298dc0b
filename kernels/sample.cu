// out[r] = argmax of logits row r (N floats); ties go to the lower id, so the result does not depend on the
// reduction order. NaNs are never chosen; a row of NaNs only gives N ("none").
// Launch: block (256), grid (R).
#include "common.cuh"

namespace tandem {

constexpr int kArgmaxThreads = 256;

// Is (v, i) a better maximum than (bv, bi)?
__device__ __forceinline__ bool better(float v, int i, float bv, int bi) { return v > bv || (v == bv && i < bi); }

__device__ __forceinline__ void warp_argmax(float& v, int& i) {
#pragma unroll
    for (int m = 16; m > 0; m >>= 1) {
        float ov = __shfl_xor_sync(0xffffffffu, v, m);
        int oi = __shfl_xor_sync(0xffffffffu, i, m);
        if (better(ov, oi, v, i)) {
            v = ov;
            i = oi;
        }
    }
}

}  // namespace tandem

extern "C" __global__ void __launch_bounds__(tandem::kArgmaxThreads)
    argmax(const float* __restrict__ logits, int* __restrict__ out, int N) {
    using namespace tandem;
    __shared__ float values[kArgmaxThreads / kWarp];
    __shared__ int ids[kArgmaxThreads / kWarp];
    const float* row = logits + (size_t) blockIdx.x * N;
    float bv = -INFINITY;
    int bi = N;  // "none yet": loses every tie with a real id
    for (int i = threadIdx.x; i < N; i += kArgmaxThreads) {
        float v = row[i];
        if (better(v, i, bv, bi)) {
            bv = v;
            bi = i;
        }
    }
    warp_argmax(bv, bi);
    if (lane() == 0) {
        values[warp()] = bv;
        ids[warp()] = bi;
    }
    __syncthreads();
    if (warp() == 0) {
        bv = lane() < kArgmaxThreads / kWarp ? values[lane()] : -INFINITY;
        bi = lane() < kArgmaxThreads / kWarp ? ids[lane()] : N;
        warp_argmax(bv, bi);
        if (lane() == 0) out[blockIdx.x] = bi;
    }
}
TANDEM_EXPORT(argmax, (const float* logits, int* out, int N), (logits, out, N))

// Greedy acceptance of a verification pass, on the device, so that only verdict[0 .. k+1] (k+2 ints) goes back
// to the host. verdict[1 .. k+1] already holds the argmax ids of the pass's k+1 rows (rows [last, d1 .. dk]);
// draft[0 .. k) are d1 .. dk (the pass's own token ids, rows 1..k). Writes verdict[0] = the accepted length n:
// the longest prefix with draft[i] == argmax of row i. The main model's next token is then verdict[1 + n].
// Launch: block (32), grid (1). Lane l compares draft tokens l, l+32, ...; the first disagreement is the lowest
// mismatching index, found by a min-butterfly (min is exact: the order does not matter).
extern "C" __global__ void __launch_bounds__(32)
    accept_greedy(const int* __restrict__ draft, int* __restrict__ verdict, int k) {
    using namespace tandem;
    int first = k;  // no mismatch: all k accepted
    for (int i = lane(); i < k; i += kWarp) {
        if (draft[i] != verdict[1 + i] && i < first) first = i;
    }
#pragma unroll
    for (int m = 16; m > 0; m >>= 1) first = min(first, __shfl_xor_sync(0xffffffffu, first, m));
    if (lane() == 0) verdict[0] = first;
}
TANDEM_EXPORT(accept_greedy, (const int* draft, int* verdict, int k), (draft, verdict, k))
