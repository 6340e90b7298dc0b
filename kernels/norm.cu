// RMSNorm over rows of K floats: out = x / sqrt(mean(x^2) + eps) * weight. The fused form first adds delta
// into the residual stream (residual += delta) and normalises the sum (common.cuh's rms_scale_store; the matvec
// epilogue of matvec.cu does the same with its block of 128).
// Launch: block (256), grid (R); no dynamic shared memory. IEEE division and sqrt (no fast math).
#include "common.cuh"

namespace tandem {

constexpr int kNormThreads = 256;

}  // namespace tandem

extern "C" __global__ void __launch_bounds__(tandem::kNormThreads)
    rmsnorm(const float* __restrict__ x, const float* __restrict__ weight, float* __restrict__ out, int K, float eps) {
    __shared__ float scratch[tandem::kNormThreads / tandem::kWarp];
    size_t r = blockIdx.x;
    tandem::rms_scale_store<tandem::kNormThreads>(x + r * K, weight, out + r * K, K, eps, scratch);
}
TANDEM_EXPORT(rmsnorm, (const float* x, const float* weight, float* out, int K, float eps), (x, weight, out, K, eps))

// residual += delta, then out = rmsnorm(residual) * weight. Each thread adds exactly the elements it later
// reads, so no barrier is needed between the add and the sum of squares.
extern "C" __global__ void __launch_bounds__(tandem::kNormThreads)
    rmsnorm_residual(float* __restrict__ residual, const float* __restrict__ delta, const float* __restrict__ weight,
                     float* __restrict__ out, int K, float eps) {
    __shared__ float scratch[tandem::kNormThreads / tandem::kWarp];
    size_t r = blockIdx.x;
    tandem::residual_rms_scale_store<tandem::kNormThreads>(residual + r * K, delta + r * K, weight, out + r * K, K, eps, scratch);
}
TANDEM_EXPORT(rmsnorm_residual, (float* residual, const float* delta, const float* weight, float* out, int K, float eps),
              (residual, delta, weight, out, K, eps))
