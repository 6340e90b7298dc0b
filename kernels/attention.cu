// Attention over the paged KV cache, for R query rows of one sequence, and the append of new K/V rows.
//
// KV layout (per layer, K and V alike): [numBlocks][blockSize][kvHeads][headDim] elements of the cache type
// (F32, F16 or BF16: the KvF32/KvF16/KvBF16 of common.cuh; kernels of a 16-bit cache end in _f16/_bf16). A sequence's block
// table lists its blocks in position order: position p lives in block table[p / blockSize], slot
// p % blockSize. Query row r (q = [R][heads][headDim]) sits at positions[r] and sees keys 0..positions[r]
// (causal); query head h reads KV head h / (heads / kvHeads) (GQA).
//
// Split: keys are cut into chunks of kAttentionChunk positions, a constant, so a row's chunks depend on its
// context length only. attention_partial computes, for each (chunk, head, row), the chunk's max score m, sum of
// e^(s - m) and the unnormalised e^(s - m)-weighted sum of V, keys in position order; the last block of each KV
// head to finish merges every row's chunks in chunk order (log-sum-exp). Neither depends on R.
#include "common.cuh"

namespace tandem {

constexpr int kAttentionChunk = 128;
constexpr int kAttentionThreads = 128;  // == kAttentionChunk: thread t owns score t of the chunk

__device__ __forceinline__ int chunk_count(int contextLength) {
    return (contextLength + kAttentionChunk - 1) / kAttentionChunk;
}

}  // namespace tandem

// Launch: block (128), grid (maxChunks, kvHeads), dynamic shared memory (kPairs x (headDim + 128) + 128 + 3 x kPairs
// + 4) x 4 bytes (LaunchGeometry.attentionPartial).
// One block per (chunk, KV head) serves every query head of the KV head's group and every row: the chunk's K and
// V are read from memory once, not once per query head and row. Query (row r, head h) is "pair" r * G + h % G of
// the block (G = heads / kvHeads), taken kPairs at a time. Partial results go to partialOut
// [R][heads][maxChunks][headDim], partialMax and partialSum [R][heads][maxChunks]; a row writes nothing for
// chunks past its context. maxChunks >= ceil((max positions + 1) / 128).
//
// Each pair's numbers depend on its own query, the cached K/V and its context length only: scores are
// lane-partial dot products (lane l holds elements 4l.. of each 128-element slice, or l, l+32, ... when the head
// dimension is no multiple of 128) combined by the fixed butterfly; a warp per pair takes the softmax (lane l
// owns positions l, l+32, l+64, l+96); V is summed in position order. So R and the grouping change no bit.
namespace tandem {

constexpr int kPairs = 16;  // query (row, head) pairs one pass over a chunk serves

// The merge of a (row, head)'s chunks, in chunk order (log-sum-exp): its attention output, by the block's threads
// over the head dimension. Each thread computes the maximum and the total itself, in the same order.
__device__ __forceinline__ void combine_pair(const float* __restrict__ partialOut, const float* __restrict__ partialMax,
                                             const float* __restrict__ partialSum, size_t base, int chunks,
                                             float* __restrict__ dst, int headDim) {
    float m = -INFINITY;
    for (int c = 0; c < chunks; ++c) m = fmaxf(m, partialMax[base + c]);
    float total = 0.0f;
    for (int c = 0; c < chunks; ++c) total += partialSum[base + c] * expf(partialMax[base + c] - m);
    for (int d = threadIdx.x; d < headDim; d += kAttentionThreads) {
        float o = 0.0f;
        for (int c = 0; c < chunks; ++c) o += partialOut[(base + c) * headDim + d] * expf(partialMax[base + c] - m);
        dst[d] = o / total;
    }
}

// After a block's chunk: every block of KV head kvh counts itself done (after its partials are visible
// device-wide); the last of the head's gridDim.x blocks merges, for every row and query head of the group, the
// chunks in chunk order into out, and resets the count for the next launch. Not a template: one copy of its shared
// word for every kernel (the host emulation keeps it in thread-local storage).
__device__ __noinline__ void combine_when_last(const float* __restrict__ partialOut, const float* __restrict__ partialMax,
                                                  const float* __restrict__ partialSum, const int* __restrict__ positions,
                                                  float* __restrict__ out, unsigned* __restrict__ done, int kvh, int R,
                                                  int heads, int group, int headDim, int maxChunks) {
    __shared__ unsigned isLast;
    __syncthreads();
    if (threadIdx.x == 0) {
        __threadfence();
        isLast = atomicAdd(done + kvh, 1u) == gridDim.x - 1;
    }
    __syncthreads();
    if (!isLast) return;  // uniform over the block
    __threadfence();
    for (int pr = 0; pr < R * group; ++pr) {
        int r = pr / group, h = kvh * group + pr % group;
        size_t pair = (size_t) r * heads + h;
        combine_pair(partialOut, partialMax, partialSum, pair * maxChunks, chunk_count(positions[r] + 1), out + pair * headDim,
                     headDim);
    }
    if (threadIdx.x == 0) done[kvh] = 0;
}

template <class Kv, int E>
__device__ __forceinline__ void load_k_slice(const typename Kv::Storage* k, int d, float* out) {
#pragma unroll
    for (int e = 0; e < E; ++e) out[e] = Kv::load(k[d + e]);
}

// The dot products of key position p (row base `key`) with every pair's query, into scores[pair][p].
template <class Kv, int E>
__device__ __forceinline__ void score_position(const typename Kv::Storage* __restrict__ key, const float* qs, float* scores,
                                               int pairs, int headDim, int p, float scale) {
    constexpr int kSlice = kWarp * E;
    int slices = (headDim + kSlice - 1) / kSlice;
    float kv[2][E];  // at most two slices held: head dimensions up to 256 (E = 4) or 64 (E = 1, strided)
    bool wide = slices > 2;
    if (!wide) {
#pragma unroll
        for (int sl = 0; sl < 2; ++sl) {
            int d = sl * kSlice + lane() * E;
            if (sl < slices && d < headDim) load_k_slice<Kv, E>(key, d, kv[sl]);
            else
#pragma unroll
                for (int e = 0; e < E; ++e) kv[sl][e] = 0.0f;
        }
    }
    for (int pr = 0; pr < pairs; ++pr) {
        const float* q = qs + pr * headDim;
        float s = 0.0f;
        for (int sl = 0; sl < slices; ++sl) {
            int d = sl * kSlice + lane() * E;
            if (d < headDim) {
                float k[E];
                if (!wide) {
#pragma unroll
                    for (int e = 0; e < E; ++e) k[e] = sl == 0 ? kv[0][e] : kv[1][e];
                } else {
                    load_k_slice<Kv, E>(key, d, k);
                }
#pragma unroll
                for (int e = 0; e < E; ++e) s += q[d + e] * k[e];
            }
        }
        s = warp_sum(s);
        if (lane() == 0) scores[pr * kAttentionChunk + p] = s * scale;
    }
}

// One block's chunk of attention_partial: n > 0 positions from `first`, for every pair of KV head kvh.
template <class Kv, int E>
__device__ __forceinline__ void partial_chunk(const float* __restrict__ q, const typename Kv::Storage* __restrict__ kCache,
                                              const typename Kv::Storage* __restrict__ vCache,
                                              const int* __restrict__ blockTable, const int* __restrict__ positions,
                                              float* __restrict__ partialOut, float* __restrict__ partialMax,
                                              float* __restrict__ partialSum, int R, int heads, int kvHeads, int headDim,
                                              int blockSize, int maxChunks, float scale, int n, int first, int c, int kvh,
                                              int group) {
    float* qs = dynamic_shared<float>();
    float* scores = qs + kPairs * headDim;
    int* rowOf = reinterpret_cast<int*>(scores + kPairs * kAttentionChunk);
    int* pairLength = rowOf + kAttentionChunk;
    float* pairSum = reinterpret_cast<float*>(pairLength + kPairs);
    float* pairMax = pairSum + kPairs;
    // The one division per position, by the thread that owns it.
    if ((int) threadIdx.x < n) {
        int pos = first + threadIdx.x;
        rowOf[threadIdx.x] = blockTable[pos / blockSize] * blockSize + pos % blockSize;
    }
    size_t rowStride = (size_t) kvHeads * headDim;  // elements between consecutive cache rows
    const typename Kv::Storage* kBase = kCache + (size_t) kvh * headDim;
    const typename Kv::Storage* vBase = vCache + (size_t) kvh * headDim;

    for (int pair0 = 0; pair0 < R * group; pair0 += kPairs) {
        int pairs = min(kPairs, R * group - pair0);
        __syncthreads();  // rowOf is written; the previous pass is done with qs, scores and the pair tables
        for (int i = threadIdx.x; i < pairs * headDim; i += kAttentionThreads) {
            int pr = pair0 + i / headDim, r = pr / group, h = kvh * group + pr % group;
            qs[i] = q[((size_t) r * heads + h) * headDim + i % headDim];
        }
        if ((int) threadIdx.x < pairs) {
            int r = (pair0 + threadIdx.x) / group;
            pairLength[threadIdx.x] = min(kAttentionChunk, positions[r] + 1 - first);
        }
        __syncthreads();

        // Scores: warp w takes positions w, w+4, ...; each key row is loaded once for all the pairs.
        for (int p = warp(); p < n; p += kAttentionThreads / kWarp) {
            score_position<Kv, E>(kBase + (size_t) rowOf[p] * rowStride, qs, scores, pairs, headDim, p, scale);
        }
        __syncthreads();

        // Softmax: a warp per pair, lane l over positions l, l+32, l+64, l+96 of the pair's length.
        for (int pr = warp(); pr < pairs; pr += kAttentionThreads / kWarp) {
            int len = pairLength[pr];
            float* sc = scores + pr * kAttentionChunk;
            float m = -INFINITY;
#pragma unroll
            for (int j = 0; j < kAttentionChunk / kWarp; ++j) {
                int p = lane() + kWarp * j;
                if (p < len) m = fmaxf(m, sc[p]);
            }
            m = warp_max(m);
            float sum = 0.0f;
#pragma unroll
            for (int j = 0; j < kAttentionChunk / kWarp; ++j) {
                int p = lane() + kWarp * j;
                if (p < len) {
                    float e = expf(sc[p] - m);
                    sc[p] = e;
                    sum += e;
                }
            }
            sum = warp_sum(sum);
            if (lane() == 0) {
                pairMax[pr] = m;
                pairSum[pr] = sum;
            }
        }
        __syncthreads();

        // Weighted V: thread t takes dimensions t, t+128, ...; each V row is read once for all the pairs.
        for (int d = threadIdx.x; d < headDim; d += kAttentionThreads) {
            float o[kPairs];
#pragma unroll
            for (int pr = 0; pr < kPairs; ++pr) o[pr] = 0.0f;
            for (int p = 0; p < n; ++p) {
                float v = Kv::load(vBase[(size_t) rowOf[p] * rowStride + d]);
#pragma unroll
                for (int pr = 0; pr < kPairs; ++pr) {
                    if (pr < pairs && p < pairLength[pr]) o[pr] += scores[pr * kAttentionChunk + p] * v;
                }
            }
#pragma unroll
            for (int pr = 0; pr < kPairs; ++pr) {
                if (pr < pairs && pairLength[pr] > 0) {
                    int r = (pair0 + pr) / group, h = kvh * group + (pair0 + pr) % group;
                    partialOut[(((size_t) r * heads + h) * maxChunks + c) * headDim + d] = o[pr];
                }
            }
        }
        if ((int) threadIdx.x < pairs && pairLength[threadIdx.x] > 0) {
            int r = (pair0 + threadIdx.x) / group, h = kvh * group + (pair0 + threadIdx.x) % group;
            size_t slot = ((size_t) r * heads + h) * maxChunks + c;
            partialMax[slot] = pairMax[threadIdx.x];
            partialSum[slot] = pairSum[threadIdx.x];
        }
    }
}

template <class Kv, int E>
__device__ __forceinline__ void attention_partial(const float* __restrict__ q, const typename Kv::Storage* __restrict__ kCache,
                                                  const typename Kv::Storage* __restrict__ vCache,
                                                  const int* __restrict__ blockTable, const int* __restrict__ positions,
                                                  float* __restrict__ partialOut, float* __restrict__ partialMax,
                                                  float* __restrict__ partialSum, int R, int heads, int kvHeads, int headDim,
                                                  int blockSize, int maxChunks, float scale, float* __restrict__ out,
                                                  unsigned* __restrict__ done) {
    // All shared memory is dynamic (the host emulation keeps static shared memory in thread-local storage, which
    // has little room): [kPairs][headDim] queries, [kPairs][kAttentionChunk] scores, the chunk's cache rows
    // (block * blockSize + slot of each position), each pair's length, sum and maximum, the chunk's length.
    int* chunkLengthSlot = reinterpret_cast<int*>(dynamic_shared<float>() + kPairs * (headDim + kAttentionChunk) + kAttentionChunk + 3 * kPairs);

    int c = blockIdx.x, kvh = blockIdx.y, group = heads / kvHeads;
    int first = c * kAttentionChunk;
    if (threadIdx.x == 0) {
        int longest = 0;
        for (int r = 0; r < R; ++r) longest = max(longest, positions[r] + 1);
        *chunkLengthSlot = min(kAttentionChunk, longest - first);
    }
    __syncthreads();
    int n = *chunkLengthSlot;
    if (n > 0) {  // uniform over the block; a block past every row's context only counts itself done
        partial_chunk<Kv, E>(q, kCache, vCache, blockTable, positions, partialOut, partialMax, partialSum, R, heads, kvHeads,
                             headDim, blockSize, maxChunks, scale, n, first, c, kvh, group);
    }
    combine_when_last(partialOut, partialMax, partialSum, positions, out, done, kvh, R, heads, group, headDim, maxChunks);
}

}  // namespace tandem

// Key slices of 4 consecutive elements a lane (8- or 16-byte loads) when the head dimension is a multiple of
// 128, else one element a lane, strided.
#define TANDEM_ATTENTION_PARTIAL(name, Kv)                                                                   \
    extern "C" __global__ void __launch_bounds__(tandem::kAttentionThreads)                                   \
        name(const float* __restrict__ q, const tandem::Kv::Storage* __restrict__ kCache,                     \
             const tandem::Kv::Storage* __restrict__ vCache, const int* __restrict__ blockTable,              \
             const int* __restrict__ positions, float* __restrict__ partialOut, float* __restrict__ partialMax, \
             float* __restrict__ partialSum, int R, int heads, int kvHeads, int headDim, int blockSize,         \
             int maxChunks, float scale, float* __restrict__ out, unsigned* __restrict__ done) {             \
        if (headDim % 128 == 0) {                                                                            \
            tandem::attention_partial<tandem::Kv, 4>(q, kCache, vCache, blockTable, positions, partialOut,    \
                                                     partialMax, partialSum, R, heads, kvHeads, headDim,      \
                                                     blockSize, maxChunks, scale, out, done);                 \
        } else {                                                                                             \
            tandem::attention_partial<tandem::Kv, 1>(q, kCache, vCache, blockTable, positions, partialOut,    \
                                                     partialMax, partialSum, R, heads, kvHeads, headDim,      \
                                                     blockSize, maxChunks, scale, out, done);                 \
        }                                                                                                    \
    }                                                                                                        \
    TANDEM_EXPORT(name,                                                                                      \
                  (const float* q, const tandem::Kv::Storage* kCache, const tandem::Kv::Storage* vCache,     \
                   const int* blockTable, const int* positions, float* partialOut, float* partialMax,        \
                   float* partialSum, int R, int heads, int kvHeads, int headDim, int blockSize, int maxChunks, \
                   float scale, float* out, unsigned* done),                                                 \
                  (q, kCache, vCache, blockTable, positions, partialOut, partialMax, partialSum, R, heads,   \
                   kvHeads, headDim, blockSize, maxChunks, scale, out, done))

TANDEM_ATTENTION_PARTIAL(attention_partial, KvF32)
TANDEM_ATTENTION_PARTIAL(attention_partial_f16, KvF16)
TANDEM_ATTENTION_PARTIAL(attention_partial_bf16, KvBF16)

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

// The K/V append with RoPE: for each of the R new rows, rotates the row's query heads in place (as rope does) and
// writes its rotated key and its value into the cache slots (as rope then kv_append would: the same angle, the
// same two products per element, then Kv::store), in one launch instead of three. The k and v inputs are not
// modified. Launch: block (256), grid (R, kRopeAppendBlocks): blocks of a row stride over its elements.
namespace tandem {

constexpr int kRopeAppendBlocks = 4;

template <class Kv>
__device__ __forceinline__ void rope_kv_append(float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
                                               typename Kv::Storage* __restrict__ kCache, typename Kv::Storage* __restrict__ vCache,
                                               const int* __restrict__ blockTable, const int* __restrict__ positions,
                                               const float* __restrict__ factors, int heads, int kvHeads, int headDim,
                                               int rotDim, float base, int neox, int blockSize) {
    int r = blockIdx.x;
    int pos = positions[r];
    int half = rotDim / 2;
    int step = blockDim.x * gridDim.y, t0 = blockIdx.y * blockDim.x + threadIdx.x;
    // Query pairs, in place: each (head, pair) belongs to one thread, which reads both elements before writing.
    float* qr = q + (size_t) r * heads * headDim;
    for (int t = t0; t < heads * half; t += step) {
        int h = t / half, i = t % half;
        float c, s;
        rope_cos_sin(pos, i, rotDim, base, factors, c, s);
        int a, b;
        rope_pair(i, rotDim, neox, a, b);
        float* x = qr + (size_t) h * headDim;
        float x0 = x[a], x1 = x[b];
        rope_rotate(x0, x1, c, s, x[a], x[b]);
    }
    // Key and value elements: each element computes its own rotated value from the unmodified input row.
    size_t n = (size_t) kvHeads * headDim;
    size_t dst = ((size_t) blockTable[pos / blockSize] * blockSize + pos % blockSize) * n;
    const float* kr = k + (size_t) r * n;
    const float* vr = v + (size_t) r * n;
    for (size_t e = t0; e < n; e += step) {
        int d = (int) (e % headDim);
        float out = kr[e];
        if (d < rotDim) {
            int i = neox ? d % half : d / 2;
            float c, s;
            rope_cos_sin(pos, i, rotDim, base, factors, c, s);
            int a, b;
            rope_pair(i, rotDim, neox, a, b);
            const float* x = kr + (e - d);
            float ra, rb;
            rope_rotate(x[a], x[b], c, s, ra, rb);
            out = d == a ? ra : rb;
        }
        kCache[dst + e] = Kv::store(out);
        vCache[dst + e] = Kv::store(vr[e]);
    }
}

}  // namespace tandem

#define TANDEM_ROPE_KV_APPEND(name, Kv)                                                                            \
    extern "C" __global__ void __launch_bounds__(256)                                                              \
        name(float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,                      \
             tandem::Kv::Storage* __restrict__ kCache, tandem::Kv::Storage* __restrict__ vCache,                    \
             const int* __restrict__ blockTable, const int* __restrict__ positions, const float* __restrict__ factors, \
             int heads, int kvHeads, int headDim, int rotDim, float base, int neox, int blockSize) {                  \
        tandem::rope_kv_append<tandem::Kv>(q, k, v, kCache, vCache, blockTable, positions, factors, heads, kvHeads,  \
                                           headDim, rotDim, base, neox, blockSize);                                 \
    }                                                                                                              \
    TANDEM_EXPORT(name,                                                                                            \
                  (float* q, const float* k, const float* v, tandem::Kv::Storage* kCache,                           \
                   tandem::Kv::Storage* vCache, const int* blockTable, const int* positions, const float* factors,  \
                   int heads, int kvHeads, int headDim, int rotDim, float base, int neox, int blockSize),           \
                  (q, k, v, kCache, vCache, blockTable, positions, factors, heads, kvHeads, headDim, rotDim, base,  \
                   neox, blockSize))

TANDEM_ROPE_KV_APPEND(rope_kv_append, KvF32)
TANDEM_ROPE_KV_APPEND(rope_kv_append_f16, KvF16)
TANDEM_ROPE_KV_APPEND(rope_kv_append_bf16, KvBF16)
