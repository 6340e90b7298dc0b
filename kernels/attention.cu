// Attention over the paged KV cache, for R query rows of one sequence, and the append of new K/V rows.
//
// KV layout (per layer, K and V alike): [numBlocks][blockSize][kvHeads][headDim] elements of the cache type
// (F32, F16 or BF16: the KvF32/KvF16/KvBF16 of common.cuh; kernels of a 16-bit cache end in _f16/_bf16). A sequence's block
// table lists its blocks in position order: position p lives in block table[p / blockSize], slot
// p % blockSize. Query row r (q = [R][heads][headDim]) sits at positions[r] and sees keys 0..positions[r]
// (causal); query head h reads KV head h / (heads / kvHeads) (GQA).
//
// Split: keys are cut into chunks of kAttentionChunk positions, a constant, so a row's chunks depend on its
// context length only. attention_partial computes, for each (chunk, head, row), the chunk's max score m,
// sum of e^(s - m) and the unnormalised e^(s - m)-weighted sum of V, keys in position order;
// attention_combine merges the chunks of a row in chunk order (log-sum-exp). Neither depends on R.
#include "common.cuh"

namespace tandem {

constexpr int kAttentionChunk = 128;
constexpr int kAttentionThreads = 128;  // == kAttentionChunk: thread t owns score t of the chunk

__device__ __forceinline__ int chunk_count(int contextLength) {
    return (contextLength + kAttentionChunk - 1) / kAttentionChunk;
}

}  // namespace tandem

// Launch: block (128), grid (maxChunks, heads, R), dynamic shared memory headDim * 4 bytes. Partial results go
// to partialOut [R][heads][maxChunks][headDim], partialMax and partialSum [R][heads][maxChunks]; blocks of
// chunks past a row's context write nothing. maxChunks >= ceil((max positions + 1) / 128).
namespace tandem {

template <class Kv>
__device__ __forceinline__ void attention_partial(const float* __restrict__ q, const typename Kv::Storage* __restrict__ kCache,
                                                  const typename Kv::Storage* __restrict__ vCache,
                                                  const int* __restrict__ blockTable, const int* __restrict__ positions,
                                                  float* __restrict__ partialOut, float* __restrict__ partialMax,
                                                  float* __restrict__ partialSum, int heads, int kvHeads, int headDim,
                                                  int blockSize, int maxChunks, float scale) {
    __shared__ float scores[kAttentionChunk];
    __shared__ float scratch[kAttentionThreads / kWarp];
    float* qs = dynamic_shared<float>();

    int c = blockIdx.x, h = blockIdx.y, r = blockIdx.z;
    int length = positions[r] + 1;
    int first = c * kAttentionChunk;
    if (first >= length) return;  // uniform over the block
    int n = min(kAttentionChunk, length - first);
    int kvh = h / (heads / kvHeads);
    size_t rowStride = (size_t) kvHeads * headDim;  // elements between consecutive positions

    const float* qrow = q + ((size_t) r * heads + h) * headDim;
    for (int d = threadIdx.x; d < headDim; d += kAttentionThreads) qs[d] = qrow[d];
    __syncthreads();

    // Scores: warp w takes positions w, w+4, ...; lanes split the head dimension, then a fixed butterfly.
    for (int p = warp(); p < n; p += kAttentionThreads / kWarp) {
        int pos = first + p;
        const typename Kv::Storage* k = kCache + ((size_t) blockTable[pos / blockSize] * blockSize + pos % blockSize) * rowStride
                         + (size_t) kvh * headDim;
        float s = 0.0f;
        for (int d = lane(); d < headDim; d += kWarp) s += qs[d] * Kv::load(k[d]);
        s = warp_sum(s);
        if (lane() == 0) scores[p] = s * scale;
    }
    __syncthreads();

    int t = threadIdx.x;
    float m = block_max<kAttentionThreads>(t < n ? scores[t] : -INFINITY, scratch);
    float e = t < n ? expf(scores[t] - m) : 0.0f;
    if (t < n) scores[t] = e;
    float sum = block_sum<kAttentionThreads>(e, scratch);  // its barriers also publish scores[]

    size_t slot = ((size_t) r * heads + h) * maxChunks + c;
    for (int d = threadIdx.x; d < headDim; d += kAttentionThreads) {
        float o = 0.0f;
        for (int p = 0; p < n; ++p) {
            int pos = first + p;
            const typename Kv::Storage* v = vCache + ((size_t) blockTable[pos / blockSize] * blockSize + pos % blockSize) * rowStride
                             + (size_t) kvh * headDim;
            o += scores[p] * Kv::load(v[d]);
        }
        partialOut[slot * headDim + d] = o;
    }
    if (threadIdx.x == 0) {
        partialMax[slot] = m;
        partialSum[slot] = sum;
    }
}

}  // namespace tandem

#define TANDEM_ATTENTION_PARTIAL(name, Kv)                                                                   \
    extern "C" __global__ void __launch_bounds__(tandem::kAttentionThreads, 8)                                \
        name(const float* __restrict__ q, const tandem::Kv::Storage* __restrict__ kCache,                     \
             const tandem::Kv::Storage* __restrict__ vCache, const int* __restrict__ blockTable,              \
             const int* __restrict__ positions, float* __restrict__ partialOut, float* __restrict__ partialMax, \
             float* __restrict__ partialSum, int heads, int kvHeads, int headDim, int blockSize, int maxChunks,  \
             float scale) {                                                                                  \
        tandem::attention_partial<tandem::Kv>(q, kCache, vCache, blockTable, positions, partialOut, partialMax, \
                                              partialSum, heads, kvHeads, headDim, blockSize, maxChunks, scale); \
    }                                                                                                        \
    TANDEM_EXPORT(name,                                                                                      \
                  (const float* q, const tandem::Kv::Storage* kCache, const tandem::Kv::Storage* vCache,     \
                   const int* blockTable, const int* positions, float* partialOut, float* partialMax,        \
                   float* partialSum, int heads, int kvHeads, int headDim, int blockSize, int maxChunks,     \
                   float scale),                                                                             \
                  (q, kCache, vCache, blockTable, positions, partialOut, partialMax, partialSum, heads, kvHeads, \
                   headDim, blockSize, maxChunks, scale))

// (128, 8): at most 64 registers; with no minimum, ptxas picked 32 registers and spilled 8 bytes in the 16-bit
// variants.
TANDEM_ATTENTION_PARTIAL(attention_partial, KvF32)
TANDEM_ATTENTION_PARTIAL(attention_partial_f16, KvF16)
TANDEM_ATTENTION_PARTIAL(attention_partial_bf16, KvBF16)

// Launch: block (128), grid (heads, R). out = [R][heads][headDim].
extern "C" __global__ void __launch_bounds__(128)
    attention_combine(const float* __restrict__ partialOut, const float* __restrict__ partialMax,
                      const float* __restrict__ partialSum, const int* __restrict__ positions, float* __restrict__ out,
                      int heads, int headDim, int maxChunks) {
    using namespace tandem;
    int h = blockIdx.x, r = blockIdx.y;
    int chunks = chunk_count(positions[r] + 1);
    size_t base = ((size_t) r * heads + h) * maxChunks;
    float m = -INFINITY;
    for (int c = 0; c < chunks; ++c) m = fmaxf(m, partialMax[base + c]);
    float total = 0.0f;
    for (int c = 0; c < chunks; ++c) total += partialSum[base + c] * expf(partialMax[base + c] - m);
    float* dst = out + ((size_t) r * heads + h) * headDim;
    for (int d = threadIdx.x; d < headDim; d += blockDim.x) {
        float o = 0.0f;
        for (int c = 0; c < chunks; ++c) o += partialOut[(base + c) * headDim + d] * expf(partialMax[base + c] - m);
        dst[d] = o / total;
    }
}
TANDEM_EXPORT(attention_combine,
              (const float* partialOut, const float* partialMax, const float* partialSum, const int* positions,
               float* out, int heads, int headDim, int maxChunks),
              (partialOut, partialMax, partialSum, positions, out, heads, headDim, maxChunks))

// Writes the K and V rows of R new positions (k, v = [R][kvHeads][headDim] floats) into their cache slots,
// converted to the cache type. Launch: block (128), grid (R).
namespace tandem {

template <class Kv>
__device__ __forceinline__ void kv_append(const float* __restrict__ k, const float* __restrict__ v,
                                          typename Kv::Storage* __restrict__ kCache, typename Kv::Storage* __restrict__ vCache,
                                          const int* __restrict__ blockTable, const int* __restrict__ positions,
                                          int kvHeads, int headDim, int blockSize) {
    int r = blockIdx.x;
    int pos = positions[r];
    size_t n = (size_t) kvHeads * headDim;
    size_t dst = ((size_t) blockTable[pos / blockSize] * blockSize + pos % blockSize) * n;
    for (size_t i = threadIdx.x; i < n; i += blockDim.x) {
        kCache[dst + i] = Kv::store(k[(size_t) r * n + i]);
        vCache[dst + i] = Kv::store(v[(size_t) r * n + i]);
    }
}

}  // namespace tandem

#define TANDEM_KV_APPEND(name, Kv)                                                                             \
    extern "C" __global__ void __launch_bounds__(128)                                                          \
        name(const float* __restrict__ k, const float* __restrict__ v, tandem::Kv::Storage* __restrict__ kCache, \
             tandem::Kv::Storage* __restrict__ vCache, const int* __restrict__ blockTable,                      \
             const int* __restrict__ positions, int kvHeads, int headDim, int blockSize) {                       \
        tandem::kv_append<tandem::Kv>(k, v, kCache, vCache, blockTable, positions, kvHeads, headDim, blockSize); \
    }                                                                                                          \
    TANDEM_EXPORT(name,                                                                                        \
                  (const float* k, const float* v, tandem::Kv::Storage* kCache, tandem::Kv::Storage* vCache,    \
                   const int* blockTable, const int* positions, int kvHeads, int headDim, int blockSize),       \
                  (k, v, kCache, vCache, blockTable, positions, kvHeads, headDim, blockSize))

TANDEM_KV_APPEND(kv_append, KvF32)
TANDEM_KV_APPEND(kv_append_f16, KvF16)
TANDEM_KV_APPEND(kv_append_bf16, KvBF16)
