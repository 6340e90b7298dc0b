// The 16-bit operands of the prefill GEMM (cuBLAS gemmEx, FP32 compute; see dev.tandem.runtime.cuda.Gemm):
// activations narrowed from F32, weight rows decoded from their stored format. bf16 != 0 picks BF16, else F16;
// both round to nearest even.
#include "common.cuh"

namespace tandem {

__device__ __forceinline__ uint16_t narrow(float v, int bf16) {
    return bf16 ? __bfloat16_as_ushort(__float2bfloat16_rn(v)) : __half_as_ushort(__float2half_rn(v));
}

// out[r][:] = weight row first + r of W (N rows of K elements), decoded and narrowed to 16 bits.
// Launch: block (256), grid (rows).
template <class Format>
__device__ __forceinline__ void dequantize16(const uint8_t* __restrict__ W, uint16_t* __restrict__ out, int K, int first, int bf16) {
    const int r = blockIdx.x;
    const uint8_t* row = W + (size_t) (first + r) * Format::rowBytes(K);
    uint16_t* dst = out + (size_t) r * K;
    const int units = K / Format::kUnit;
    for (int u = threadIdx.x; u < units; u += blockDim.x) {
        float w[Format::kUnit];
        Format::decode(row, K, u, w);
#pragma unroll
        for (int i = 0; i < Format::kUnit; ++i) dst[(size_t) u * Format::kUnit + i] = narrow(w[i], bf16);
    }
}

}  // namespace tandem

// out[i] = x[i] narrowed to 16 bits, for i < n. Launch: block (256), grid (ceil(n / 256)).
extern "C" __global__ void __launch_bounds__(256)
    narrow16(const float* __restrict__ x, uint16_t* __restrict__ out, int n, int bf16) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = tandem::narrow(x[i], bf16);
}
TANDEM_EXPORT(narrow16, (const float* x, uint16_t* out, int n, int bf16), (x, out, n, bf16))

#define TANDEM_DEQUANTIZE16(name, Format)                                                                  \
    extern "C" __global__ void __launch_bounds__(256)                                                     \
        name(const uint8_t* __restrict__ W, uint16_t* __restrict__ out, int K, int first, int bf16) {     \
        tandem::dequantize16<tandem::Format>(W, out, K, first, bf16);                                      \
    }                                                                                                     \
    TANDEM_EXPORT(name, (const uint8_t* W, uint16_t* out, int K, int first, int bf16), (W, out, K, first, bf16))

TANDEM_DEQUANTIZE16(dequantize16_f32, F32)
TANDEM_DEQUANTIZE16(dequantize16_f16, F16)
TANDEM_DEQUANTIZE16(dequantize16_bf16, BF16)
TANDEM_DEQUANTIZE16(dequantize16_q8_0, Q8_0)
TANDEM_DEQUANTIZE16(dequantize16_q4_0, Q4_0)
TANDEM_DEQUANTIZE16(dequantize16_q4_k, Q4_K)
TANDEM_DEQUANTIZE16(dequantize16_q5_k, Q5_K)
TANDEM_DEQUANTIZE16(dequantize16_q6_k, Q6_K)
