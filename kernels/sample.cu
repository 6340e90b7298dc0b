// out[r] = argmax of logits row r (N floats); ties go to the lower id, so the result does not depend on the
// reduction order. NaNs are never chosen; a row of NaNs only gives N ("none"). tops (may be null): tops[r] = the
// probability softmax gives row r's top token, 1 / sum(exp(logit - max)) (0 for a row without a finite maximum),
// which a greedy draft's p-min test needs: it saves copying the row to the host.
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
    argmax(const float* __restrict__ logits, int* __restrict__ out, float* __restrict__ tops, int N) {
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
        if (lane() == 0) {
            out[blockIdx.x] = bi;
            values[0] = bv;  // warp 0 has read every values[] slot before its butterflies
        }
    }
    if (tops == nullptr) return;  // the same for every thread
    __syncthreads();
    const float m = values[0];
    __syncthreads();  // values is block_sum's scratch next
    float sum = 0.0f;
    if (m > -INFINITY) {
        for (int i = threadIdx.x; i < N; i += kArgmaxThreads) sum += expf(row[i] - m);
    }
    sum = block_sum<kArgmaxThreads>(sum, values);
    if (threadIdx.x == 0) tops[blockIdx.x] = m > -INFINITY ? 1.0f / sum : 0.0f;
}
TANDEM_EXPORT(argmax, (const float* logits, int* out, float* tops, int N), (logits, out, tops, N))

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

// ---- Sampling on the device (temperature > 0) -------------------------------------------------------------
// The sampler chain of dev.tandem.decode.Sampler without the repetition penalty, and the speculative rejection
// test, from counter-based randoms keyed by (seed, position, stream): the host emulation and a GPU draw alike.

namespace tandem {

constexpr int kSampleThreads = 256;

// Smaller key = better token: logit descending, then id ascending (Sampler.key's order).
__device__ __forceinline__ unsigned long long sample_key(float logit, int id) {
    int bits = __float_as_int(logit);
    int ordered = bits ^ ((bits >> 31) & 0x7fffffff);  // signed-int order equals float order
    unsigned hi = (unsigned) (0x7fffffffLL - (long long) ordered);
    return ((unsigned long long) hi << 32) | (unsigned) id;
}

// Dynamic shared memory of sample_probs, in bytes: scratch for block reductions [8 floats], a digit histogram
// and the values thread 0 hands to the block [kHistInts ints], then the sorted candidates [kSortedCandidates
// keys] and their weights [kSortedCandidates floats]. LaunchGeometry.sampleProbs gives the same total.
constexpr int kHistInts = 260;
constexpr int kSortedCandidates = 1024;  // top-k at or below this: top-p walks the sorted candidates
constexpr int kHistOffset = 8 * 4, kCandidateOffset = kHistOffset + kHistInts * 4;
constexpr int kWeightOffset = kCandidateOffset + kSortedCandidates * 8;
constexpr int kSampleSharedBytes = kWeightOffset + kSortedCandidates * 4;
static_assert(kSampleSharedBytes == 13360, "LaunchGeometry.SAMPLE_PROBS_SHARED_BYTES says 13360");

// The need-th smallest of the row's keys (they are distinct: the id is in the low bits), by radix select on
// 8-bit digits from the top: each of the 8 passes counts, in integers (exact, so every thread takes the same
// branch), the keys that match the digits chosen so far, by their next digit; thread 0 picks the digit whose
// bin holds the need-th key. 8 passes over the row where a bisection of the key space took 64.
__device__ unsigned long long kth_key(const float* row, int V, int need, int* hist) {
    unsigned long long prefix = 0;
    int remaining = need;
    for (int shift = 56; shift >= 0; shift -= 8) {
        for (int b = threadIdx.x; b < 256; b += kSampleThreads) hist[b] = 0;
        __syncthreads();
        const unsigned long long high = shift == 56 ? 0ull : ~0ull << (shift + 8);  // the digits already chosen
        for (int i = threadIdx.x; i < V; i += kSampleThreads) {
            unsigned long long key = sample_key(row[i], i);
            if ((key & high) == prefix) atomicAdd(&hist[(int) ((key >> shift) & 255u)], 1);
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            int b = 0, below = 0;
            while (below + hist[b] < remaining) below += hist[b++];
            hist[256] = b;
            hist[257] = remaining - below;
        }
        __syncthreads();
        prefix |= (unsigned long long) hist[256] << shift;
        remaining = hist[257];
        __syncthreads();  // hist is cleared by the next pass
    }
    return prefix;
}

// Top-p without a small top-k: the smallest key T such that the keys <= T (at most `keep`) carry at least
// top-p of the kept mass `total`, by bisection of the key space (64 passes; each mass a fixed-order block sum).
__device__ unsigned long long mass_prefix_bisect(const float* row, int V, float m, unsigned long long keep, float target, float* scratch) {
    unsigned long long lo = 0, hi = keep;
    while (lo < hi) {
        unsigned long long mid = lo + (hi - lo) / 2;
        float mass = 0.0f;
        for (int i = threadIdx.x; i < V; i += kSampleThreads) mass += sample_key(row[i], i) <= mid ? expf(row[i] - m) : 0.0f;
        mass = block_sum<kSampleThreads>(mass, scratch);
        if (mass >= target) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

// Top-p after a top-k of K <= kSortedCandidates: the K keys <= keep are gathered and sorted (bitonic, padded
// with ~0), their weights exp(logit - m) computed in parallel, and thread 0 sums them in key order in double
// and keeps the shortest prefix reaching top-p of the sum, as dev.tandem.decode.Sampler does. Returns the
// last kept key.
__device__ unsigned long long mass_prefix_sorted(const float* row, int V, float m, unsigned long long keep, int K, float topP,
                                                 int* hist, unsigned long long* cand, float* weight) {
    int n = 1;
    while (n < K) n <<= 1;
    for (int i = threadIdx.x; i < n; i += kSampleThreads) cand[i] = ~0ull;
    if (threadIdx.x == 0) hist[0] = 0;
    __syncthreads();
    for (int i = threadIdx.x; i < V; i += kSampleThreads) {
        unsigned long long key = sample_key(row[i], i);
        if (key <= keep) cand[atomicAdd(&hist[0], 1)] = key;  // arrival order varies; the sort below fixes it
    }
    __syncthreads();
    for (int size = 2; size <= n; size <<= 1) {
        for (int stride = size >> 1; stride > 0; stride >>= 1) {
            for (int i = threadIdx.x; i < n; i += kSampleThreads) {
                int j = i ^ stride;
                if (j > i) {
                    unsigned long long a = cand[i], b = cand[j];
                    if ((a > b) == ((i & size) == 0)) {
                        cand[i] = b;
                        cand[j] = a;
                    }
                }
            }
            __syncthreads();
        }
    }
    for (int i = threadIdx.x; i < K; i += kSampleThreads) weight[i] = expf(row[(int) (cand[i] & 0xffffffffu)] - m);
    __syncthreads();
    if (threadIdx.x == 0) {
        double sum = 0.0;
        for (int i = 0; i < K; ++i) sum += weight[i];
        const double target = (double) topP * sum;
        double cumulative = 0.0;
        int kept = K;
        for (int i = 0; i < K; ++i) {
            cumulative += weight[i];
            if (cumulative >= target) {
                kept = i + 1;
                break;
            }
        }
        hist[256] = kept - 1;
    }
    __syncthreads();
    unsigned long long last = cand[hist[256]];
    __syncthreads();
    return last;
}

// splitmix64's finaliser: a bijection that mixes every input bit into every output bit.
__device__ __forceinline__ unsigned long long mix64(unsigned long long x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// A uniform draw in [0, 1) with 24 bits, exact in float: stream 0 decides acceptance at `position`, stream 1
// draws the token there. dev.tandem.runtime.cuda.CounterRandom computes the same numbers.
__device__ __forceinline__ float counter_uniform(unsigned long long seed, int position, int stream) {
    unsigned long long h = mix64(seed ^ mix64(((unsigned long long) (unsigned) position << 1) | (unsigned) stream));
    return (float) (h >> 40) * (1.0f / 16777216.0f);
}

}  // namespace tandem

// probs[r] = the sampling distribution of logits row r: top-k (ties: lower id first), top-p and min-p on the
// probabilities before temperature (as llama.cpp), then softmax((logit - max) / T) over the kept ids, zero
// elsewhere. topK <= 0 or >= V keeps all; topP >= 1 and minP <= 0 are off. NaN logits are not expected.
// tops (may be null): tops[r] = the probability of row r's top token, which every filter keeps (a draft's p-min
// test needs only this).
// Launch: block (256), grid (R), kSampleSharedBytes of dynamic shared memory.
extern "C" __global__ void __launch_bounds__(tandem::kSampleThreads)
    sample_probs(const float* __restrict__ logits, float* __restrict__ probs, int V, float invTemperature, int topK, float topP, float minP,
                 float* __restrict__ tops) {
    using namespace tandem;
    // Dynamic, not static __shared__: see accept_sampled.
    unsigned char* shared = dynamic_shared<unsigned char>();
    float* scratch = reinterpret_cast<float*>(shared);
    int* hist = reinterpret_cast<int*>(shared + kHistOffset);
    unsigned long long* cand = reinterpret_cast<unsigned long long*>(shared + kCandidateOffset);
    float* weight = reinterpret_cast<float*>(shared + kWeightOffset);
    const float* row = logits + (size_t) blockIdx.x * V;
    float* out = probs + (size_t) blockIdx.x * V;
    float m = -INFINITY;
    for (int i = threadIdx.x; i < V; i += kSampleThreads) m = fmaxf(m, row[i]);
    m = block_max<kSampleThreads>(m, scratch);
    // Keys at or below `keep` survive top-k.
    const bool topKOn = topK > 0 && topK < V;
    unsigned long long keep = topKOn ? kth_key(row, V, topK, hist) : ~0ull;
    if (topP < 1.0f) {
        if (topKOn && topK <= kSortedCandidates) {
            keep = mass_prefix_sorted(row, V, m, keep, topK, topP, hist, cand, weight);
        } else {
            float total = 0.0f;
            for (int i = threadIdx.x; i < V; i += kSampleThreads) total += sample_key(row[i], i) <= keep ? expf(row[i] - m) : 0.0f;
            total = block_sum<kSampleThreads>(total, scratch);
            keep = mass_prefix_bisect(row, V, m, keep, topP * total, scratch);
        }
    }
    float sum = 0.0f;
    for (int i = threadIdx.x; i < V; i += kSampleThreads) {
        float w = expf(row[i] - m);
        float v = sample_key(row[i], i) <= keep && w >= minP ? expf((row[i] - m) * invTemperature) : 0.0f;
        out[i] = v;
        sum += v;
    }
    sum = block_sum<kSampleThreads>(sum, scratch);
    float inv = 1.0f / sum;
    for (int i = threadIdx.x; i < V; i += kSampleThreads) out[i] *= inv;
    if (tops != nullptr && threadIdx.x == 0) tops[blockIdx.x] = inv;  // the top token's weight is exp(0) = 1
}
TANDEM_EXPORT(sample_probs, (const float* logits, float* probs, int V, float invTemperature, int topK, float topP, float minP, float* tops),
              (logits, probs, V, invTemperature, topK, topP, minP, tops))

namespace tandem {

// One speculative-sampling verdict, made by the calling block (256 threads) with dynamic shared memory `partial`
// (264 words): p holds k+1 rows (the main model's distributions after last, d1 .. dk), q k rows (the draft's),
// draft the k tokens, meta = (seed low, seed high, position of d1). d_i is accepted when
// u0(position+i) * q_i(d_i) < p_i(d_i) (probability min(1, p/q)); at the first rejection the token is drawn from
// norm(max(0, p_i - q_i)) (p_i itself when that is all zero), after k acceptances from p_k, by inverse CDF in id
// order with u1(position+i). verdict = (accepted, token).
// Inverse CDF: thread t owns ids [t*c, (t+1)*c) (c = ceil(V/256)), sums them in id order, thread 0 scans the
// 256 sums in order; the thread whose range holds u*total walks its ids.
__device__ __forceinline__ void accept_one(const float* __restrict__ p, const float* __restrict__ q, const int* __restrict__ draft,
                                           const int* __restrict__ meta, int k, int V, int* __restrict__ verdict, float* partial) {
    float& total = partial[kSampleThreads];
    float& draw = partial[kSampleThreads + 1];
    int* flags = reinterpret_cast<int*>(partial + kSampleThreads + 2);
    int& accepted = flags[0];
    int& chosen = flags[1];
    int& lastPositive = flags[2];
    const int t = threadIdx.x;
    if (t == 0) {
        // Thread 0 makes every draw, so the seed is not kept live across the barriers below.
        const unsigned long long seed = ((unsigned long long) (unsigned) meta[1] << 32) | (unsigned) meta[0];
        const int position = meta[2];
        int a = 0;
        while (a < k && counter_uniform(seed, position + a, 0) * q[(size_t) a * V + draft[a]] < p[(size_t) a * V + draft[a]]) a++;
        accepted = a;
        draw = counter_uniform(seed, position + a, 1);
        chosen = -1;
        lastPositive = -1;
    }
    __syncthreads();
    const int a = accepted;
    const float* pr = p + (size_t) a * V;
    bool residual = a < k;
    const float* qr = q + (size_t) min(a, k - 1 < 0 ? 0 : k - 1) * V;  // read only when residual
    const int chunk = (V + kSampleThreads - 1) / kSampleThreads;
    const int begin = min(V, t * chunk), end = min(V, begin + chunk);
    float mine = 0.0f;
    for (int attempt = 0; attempt < 2; ++attempt) {
        mine = 0.0f;
        for (int i = begin; i < end; ++i) mine += residual ? fmaxf(pr[i] - qr[i], 0.0f) : pr[i];
        partial[t] = mine;
        __syncthreads();
        if (t == 0) {
            float run = 0.0f;
            for (int j = 0; j < kSampleThreads; ++j) {
                float v = partial[j];
                partial[j] = run;
                run += v;
            }
            total = run;
        }
        __syncthreads();
        if (total > 0.0f || !residual) break;
        residual = false;  // nothing left of p - q (equal up to rounding): draw from p itself
        __syncthreads();   // partial is rewritten next
    }
    const float target = draw * total;
    int lastHere = -1;
    for (int i = begin; i < end; ++i) {
        if ((residual ? fmaxf(pr[i] - qr[i], 0.0f) : pr[i]) > 0.0f) lastHere = i;
    }
    if (lastHere >= 0) atomicMax(&lastPositive, lastHere);
    if (partial[t] <= target && target < partial[t] + mine) {
        float cumulative = partial[t];
        int pick = lastHere;  // rounding: the walk's sums may fall short of the range's end
        for (int i = begin; i < end; ++i) {
            cumulative += residual ? fmaxf(pr[i] - qr[i], 0.0f) : pr[i];
            if (target < cumulative) {
                pick = i;
                break;
            }
        }
        chosen = pick;
    }
    __syncthreads();
    if (t == 0) {
        verdict[0] = a;
        verdict[1] = chosen >= 0 ? chosen : lastPositive;  // u*total rounded up to total: the last id with mass
    }
}

}  // namespace tandem

// Speculative sampling's verdict for a batch of verifications of one shape, one per block b, each of k draft
// tokens (k = 0: a draw from p): p[b] holds k+1 rows, q[b] k rows, draft[b] the k tokens, meta[b] = (seed low,
// seed high, position of d1); verdict[b] = (accepted, token). See accept_one.
// Launch: block (256), grid (B), 1056 bytes of dynamic shared memory.
extern "C" __global__ void __launch_bounds__(tandem::kSampleThreads)
    accept_sampled(const float* __restrict__ p, const float* __restrict__ q, const int* __restrict__ draft,
                   const int* __restrict__ meta, int* __restrict__ verdict, int k, int V) {
    using namespace tandem;
    // Dynamic shared memory, not static __shared__: in the host emulation static __shared__ variables are
    // thread-local storage, and the static TLS room of a dlopen'ed library is nearly used up.
    const int b = blockIdx.x;
    accept_one(p + (size_t) b * (k + 1) * V, q + (size_t) b * k * V, draft + (size_t) b * k, meta + 3 * b, k, V, verdict + 2 * b,
               dynamic_shared<float>());
}
TANDEM_EXPORT(accept_sampled, (const float* p, const float* q, const int* draft, const int* meta, int* verdict, int k, int V),
              (p, q, draft, meta, verdict, k, V))

// The verdicts of a batched verification pass: sequences with their own draft lengths and seeds, their rows
// anywhere in the pass. Block b verifies sequence b from meta[8b .. 8b+8) = (seed low, seed high, position of d1,
// k >= 1, first p row, first q row, row of d1 in tokens, unused): its k+1 distributions are p rows
// [pRow, pRow + k] (one per result row of the pass), its draft's k rows are q rows [qRow, qRow + k), its draft
// tokens tokens[draftRow .. draftRow + k) (the pass's own token ids). verdict[2b .. 2b+2) = (accepted, token).
// The caller keeps the row ranges inside p and q; sequences never share rows, so blocks write apart.
// Launch: block (256), grid (sequences), 1056 bytes of dynamic shared memory.
extern "C" __global__ void __launch_bounds__(tandem::kSampleThreads)
    accept_sampled_batch(const float* __restrict__ p, const float* __restrict__ q, const int* __restrict__ tokens,
                         const int* __restrict__ meta, int* __restrict__ verdict, int V) {
    using namespace tandem;
    const int* m = meta + 8 * blockIdx.x;
    const int k = m[3];
    accept_one(p + (size_t) m[4] * V, q + (size_t) m[5] * V, tokens + m[6], m, k, V, verdict + 2 * blockIdx.x, dynamic_shared<float>());
}
TANDEM_EXPORT(accept_sampled_batch, (const float* p, const float* q, const int* tokens, const int* meta, int* verdict, int V),
              (p, q, tokens, meta, verdict, V))
