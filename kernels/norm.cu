// RMSNorm over rows of K floats: out = x / sqrt(mean(x^2) + eps) * weight. The fused form first adds delta
// into the residual stream (residual += delta) and normalises the sum. Thread t sums elements t, t+256, ...
// in order, then block_sum's fixed butterflies: the order depends on K only.
// Launch: block (256), grid (R); no dynamic shared memory. IEEE division and sqrt (no fast math).
#include "common.cuh"

namespace tandem {

constexpr int kNormThreads = 256;

__device__ __forceinline__ void rms_scale_store(const float* __restrict__ v, const float* __restrict__ weight,
                                                float* __restrict__ out, int K, float eps) {
    __shared__ float scratch[kNormThreads / kWarp];
    float ss = 0.0f;
    for (int i = threadIdx.x; i < K; i += kNormThreads) ss += v[i] * v[i];
    ss = block_sum<kNormThreads>(ss, scratch);
    float scale = 1.0f / sqrtf(ss / (float) K + eps);
    for (int i = threadIdx.x; i < K; i += kNormThreads) out[i] = v[i] * scale * weight[i];
}

}  // namespace tandem

extern "C" __global__ void __launch_bounds__(tandem::kNormThreads)
    rmsnorm(const float* __restrict__ x, const float* __restrict__ weight, float* __restrict__ out, int K, float eps) {
    size_t r = blockIdx.x;
    tandem::rms_scale_store(x + r * K, weight, out + r * K, K, eps);
}
TANDEM_EXPORT(rmsnorm, (const float* x, const float* weight, float* out, int K, float eps), (x, weight, out, K, eps))

// residual += delta, then out = rmsnorm(residual) * weight. Each thread adds exactly the elements it later
// reads, so no barrier is needed between the add and the sum of squares.
extern "C" __global__ void __launch_bounds__(tandem::kNormThreads)
    rmsnorm_residual(float* __restrict__ residual, const float* __restrict__ delta, const float* __restrict__ weight,
                     float* __restrict__ out, int K, float eps) {
    size_t r = blockIdx.x;
    float* v = residual + r * K;
    const float* d = delta + r * K;
    for (int i = threadIdx.x; i < K; i += tandem::kNormThreads) v[i] += d[i];
    tandem::rms_scale_store(v, weight, out + r * K, K, eps);
}
TANDEM_EXPORT(rmsnorm_residual, (float* residual, const float* delta, const float* weight, float* out, int K, float eps),
              (residual, delta, weight, out, K, eps))
