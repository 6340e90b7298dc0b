// Element-wise kernels. Launch: block (256), grid (ceil(n / 256)).
#include "common.cuh"

// out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + e^-g).
extern "C" __global__ void __launch_bounds__(256)
    swiglu(const float* __restrict__ gate, const float* __restrict__ up, float* __restrict__ out, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float g = gate[i];
    out[i] = g / (1.0f + expf(-g)) * up[i];
}
TANDEM_EXPORT(swiglu, (const float* gate, const float* up, float* out, int n), (gate, up, out, n))

// y[r][j] += bias[j] for y = [n / N][N] (Qwen's Q/K/V biases).
extern "C" __global__ void __launch_bounds__(256) bias_add(float* __restrict__ y, const float* __restrict__ bias, int N, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    y[i] += bias[i % N];
}
TANDEM_EXPORT(bias_add, (float* y, const float* bias, int N, int n), (y, bias, N, n))
