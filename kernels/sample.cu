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
