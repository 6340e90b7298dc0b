// out[r][:] = row tokens[r] of the embedding table W (N rows of K elements), decoded to floats.
// Launch: block (256), grid (R). A token outside [0, N) gives a row of zeros (the caller validates ids).
#include "common.cuh"

namespace tandem {

template <class Format>
__device__ __forceinline__ void embedding(const uint8_t* __restrict__ W, const int* __restrict__ tokens,
                                          float* __restrict__ out, int K, int N) {
    int r = blockIdx.x;
    int token = tokens[r];
    float* dst = out + (size_t) r * K;
    int units = K / Format::kUnit;
    for (int u = threadIdx.x; u < units; u += blockDim.x) {
        float w[Format::kUnit];
        if (token >= 0 && token < N) {
            Format::decode(W + (size_t) token * Format::rowBytes(K), K, u, w);
        } else {
#pragma unroll
            for (int i = 0; i < Format::kUnit; ++i) w[i] = 0.0f;
        }
#pragma unroll
        for (int i = 0; i < Format::kUnit; ++i) dst[(size_t) u * Format::kUnit + i] = w[i];
    }
}

}  // namespace tandem

#define TANDEM_EMBEDDING(name, Format)                                                                   \
    extern "C" __global__ void __launch_bounds__(256)                                                   \
        name(const uint8_t* __restrict__ W, const int* __restrict__ tokens, float* __restrict__ out, int K, \
             int N) {                                                                                   \
        tandem::embedding<tandem::Format>(W, tokens, out, K, N);                                         \
    }                                                                                                   \
    TANDEM_EXPORT(name, (const uint8_t* W, const int* tokens, float* out, int K, int N), (W, tokens, out, K, N))

TANDEM_EMBEDDING(embedding_f32, F32)
TANDEM_EMBEDDING(embedding_f16, F16)
TANDEM_EMBEDDING(embedding_bf16, BF16)
TANDEM_EMBEDDING(embedding_q8_0, Q8_0)
TANDEM_EMBEDDING(embedding_q4_0, Q4_0)
TANDEM_EMBEDDING(embedding_q4_k, Q4_K)
TANDEM_EMBEDDING(embedding_q5_k, Q5_K)
TANDEM_EMBEDDING(embedding_q6_k, Q6_K)
