// y[r][o] = dot(W row o, x row r) for r < R <= 17 activation rows, in one launch: each weight row is read once
// for all rows. One warp per output row; lane l decodes units l, l+32, l+64, ... of the row (the unit
// partition depends on K only), adds unit dot products into one accumulator per activation row in unit
// order, and the warp combines lanes with a fixed xor butterfly. So y[r][o] has the same bits whatever R is.
//
// Launch: block (128), grid (ceil(N / 4)); no dynamic shared memory. W is in the device layout
// (dev.tandem.runtime.cuda.WeightLayout), rows rowBytes(K) apart; x is
// [R][K] floats, y is [R][N] floats; K must be a multiple of the format's unit (8 for float types, 256 for
// K-quants, 32 otherwise); W and x 16-byte aligned. Activations are F32 for every format: quantised weights
// are decoded to floats in registers.
#include "common.cuh"

namespace tandem {

constexpr int kMatvecThreads = 128;

template <class Format>
__device__ __forceinline__ void matvec(const uint8_t* __restrict__ W, const float* __restrict__ x, float* __restrict__ y,
                                       int K, int N, int R) {
    int o = blockIdx.x * (kMatvecThreads / kWarp) + warp();
    if (o >= N) return;  // the whole warp leaves together
    const uint8_t* row = W + (size_t) o * Format::rowBytes(K);
    float acc[kMaxRows];
#pragma unroll
    for (int r = 0; r < kMaxRows; ++r) acc[r] = 0.0f;

    int units = K / Format::kUnit;
    for (int u = lane(); u < units; u += kWarp) {
        float w[Format::kUnit];
        Format::decode(row, K, u, w);
#pragma unroll
        for (int r = 0; r < kMaxRows; ++r) {
            if (r < R) {
                const float4* xr = reinterpret_cast<const float4*>(x + (size_t) r * K + (size_t) u * Format::kUnit);
                float s = 0.0f;
#pragma unroll
                for (int i = 0; i < Format::kUnit / 4; ++i) {
                    float4 v = xr[i];
                    s += w[4 * i] * v.x;
                    s += w[4 * i + 1] * v.y;
                    s += w[4 * i + 2] * v.z;
                    s += w[4 * i + 3] * v.w;
                }
                acc[r] += s;
            }
        }
    }
#pragma unroll
    for (int r = 0; r < kMaxRows; ++r) {
        if (r < R) {
            float v = warp_sum(acc[r]);
            if (lane() == 0) y[(size_t) r * N + o] = v;
        }
    }
}

}  // namespace tandem

#define TANDEM_MATVEC(name, Format)                                                                        \
    extern "C" __global__ void __launch_bounds__(tandem::kMatvecThreads)                                  \
        name(const uint8_t* __restrict__ W, const float* __restrict__ x, float* __restrict__ y, int K, int N, \
             int R) {                                                                                     \
        tandem::matvec<tandem::Format>(W, x, y, K, N, R);                                                  \
    }                                                                                                     \
    TANDEM_EXPORT(name, (const uint8_t* W, const float* x, float* y, int K, int N, int R), (W, x, y, K, N, R))

TANDEM_MATVEC(matvec_f32, F32)
TANDEM_MATVEC(matvec_f16, F16)
TANDEM_MATVEC(matvec_bf16, BF16)
TANDEM_MATVEC(matvec_q8_0, Q8_0)
TANDEM_MATVEC(matvec_q4_0, Q4_0)
TANDEM_MATVEC(matvec_q4_k, Q4_K)
TANDEM_MATVEC(matvec_q5_k, Q5_K)
TANDEM_MATVEC(matvec_q6_k, Q6_K)
