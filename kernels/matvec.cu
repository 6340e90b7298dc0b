// y[r][o] = dot(W row o, x row r) for the R activation rows of a pass, in one launch: each weight row is read
// once for all rows. One warp per output row. Each kernel is compiled for a row count T (name suffix _r<T>):
// exact for T = 1..8 (R must equal T), and for T = 12 and 17 any R up to T (rows past R are skipped), so a
// decode pass issues the instructions of one row, not of seventeen.
//
// The bitwise contract: a row's sum runs over the same lane partition, in the same order, whatever T and R
// are (the partition depends on K only), and lanes are combined by a fixed xor butterfly. So y[r][o] has the
// same bits in every instantiation.
//
// Two lane partitions:
// - "Flat" formats (F32, F16, BF16, Q8_0): a row is cut into 16-byte spans of kSpan consecutive elements; lane l
//   takes spans l, l+32, l+64, ... Neighbouring lanes read neighbouring weight bytes and neighbouring
//   activations, so every load of the warp is one contiguous run. Weights arrive by cp.async into two stages of
//   8 spans a lane per warp and row (dynamic shared memory: 2 stages x 4 KB, Q8_0 4352 bytes, per warp and
//   weight row), so each warp has the next 128 bytes a lane in flight while it multiplies the current ones,
//   whatever its register budget (ptxas sinks loads into registers next to their use when it aims for
//   occupancy).
// - "Unit" formats (Q4_0, Q4_K, Q5_K, Q6_K): lane l decodes 32-element units l, l+32, ... (their block
//   layouts interleave elements across 16-byte groups).
//
// Outputs: the weight rows of up to three matrices of one type and row length are one launch (Q, K and V of
// a layer): rows 0..n0-1 are W0's, the next n1 W1's, the next n2 W2's; matrix j writes y_j = [R][n_j], plus
// bias_j[o] when bias_j is not null (the same single addition a separate bias pass would make). The _swiglu
// kernels read two matrices of N rows each (gate Wg and up Wu) and write y[r][o] = silu(g) * u, silu(g) =
// g / (1 + e^-g), as the swiglu kernel does: the FFN's gate, up and activation in one pass.
//
// With a residual (not null; one matrix), the launch also does what rmsnorm_residual would after it: residual +=
// y0, normOut = rmsnorm(residual) * normWeight (eps), by its last block to finish (counted in *done, a device
// word that is 0 between launches): the residual stream's add and the next norm cost no launch of their own.
//
// Launch: block (128), grid (ceil((n0 + n1 + n2) / 4)); the _swiglu kernels block (64), grid (ceil(N / 2)); dynamic
// shared memory for the flat formats' stages (LaunchGeometry.matvec, matvecGated), none for the others. W is in the
// device layout (dev.tandem.runtime.cuda.WeightLayout), rows rowBytes(K) apart; x is [R][K] floats; K must be
// a multiple of the format's unit (8 for float types, 256 for K-quants, 32 otherwise); W and x 16-byte aligned.
// Activations are F32 for every format: quantised weights are decoded to floats in registers.
#include "common.cuh"

namespace tandem {

constexpr int kMatvecThreads = 128;
constexpr int kGatedThreads = 64;  // two weight rows a warp: half the warps a block keep the same shared memory
constexpr int kMatvecStages = 2;  // weight stages a warp keeps: one multiplied, one in flight (LaunchGeometry)

// Flat formats: span s of a row is the 16 bytes at 16s (kSpan elements); Q8_0 adds the scales of the spans, 2
// bytes for every 2 spans. decode turns a span into kSpan floats w and a scale applied to the span's dot product
// (kScaled), or none. A warp's stage holds kStageSpans spans a lane (lane l's spans s0 + 32i + l) of one row: 8
// (8 KB of dynamic shared memory a warp with two stages); the gated form's two rows take 4 each.
constexpr int kStageSpans = 8;

template <int kScalesPerSpanPair> struct FlatStage {
    static constexpr int kScaleBytes = kScalesPerSpanPair * kWarp / 2 * kStageSpans;  // 0, or 2 bytes a block
    static constexpr int kBytes = kStageSpans * kWarp * 16 + kScaleBytes;
};

struct FlatF32 : FlatStage<0> {
    static constexpr int kSpan = 4;
    static constexpr bool kScaled = false;
    struct Raw { uint4 q; };
    static __device__ __forceinline__ size_t rowBytes(int k) { return F32::rowBytes(k); }
    static __device__ __forceinline__ void decode(const Raw& raw, float* w, float&) {
        w[0] = __uint_as_float(raw.q.x);
        w[1] = __uint_as_float(raw.q.y);
        w[2] = __uint_as_float(raw.q.z);
        w[3] = __uint_as_float(raw.q.w);
    }
};

struct FlatF16 : FlatStage<0> {
    static constexpr int kSpan = 8;
    static constexpr bool kScaled = false;
    struct Raw { uint4 q; };
    static __device__ __forceinline__ size_t rowBytes(int k) { return F16::rowBytes(k); }
    static __device__ __forceinline__ void decode(const Raw& raw, float* w, float&) {
        uint16_t h[8];
        split_halves(raw.q, h);
#pragma unroll
        for (int i = 0; i < 8; ++i) w[i] = half_to_float(h[i]);
    }
};

struct FlatBF16 : FlatStage<0> {
    static constexpr int kSpan = 8;
    static constexpr bool kScaled = false;
    struct Raw { uint4 q; };
    static __device__ __forceinline__ size_t rowBytes(int k) { return BF16::rowBytes(k); }
    static __device__ __forceinline__ void decode(const Raw& raw, float* w, float&) {
        // A bfloat16 is the top half of its float: shift the low one up, mask the high one.
        unsigned words[4] = {raw.q.x, raw.q.y, raw.q.z, raw.q.w};
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            w[2 * i] = __uint_as_float(words[i] << 16);
            w[2 * i + 1] = __uint_as_float(words[i] & 0xffff0000u);
        }
    }
};

// Q8_0 on its device layout (quants in element order, then the block scales): a span is half a block.
struct FlatQ8_0 : FlatStage<2> {
    static constexpr int kSpan = 16;
    static constexpr bool kScaled = true;
    struct Raw { uint4 q; uint16_t d; };
    static __device__ __forceinline__ size_t rowBytes(int k) { return Q8_0::rowBytes(k); }
    static __device__ __forceinline__ void decode(const Raw& raw, float* w, float& scale) {
        unsigned words[4] = {raw.q.x ^ 0x80808080u, raw.q.y ^ 0x80808080u, raw.q.z ^ 0x80808080u, raw.q.w ^ 0x80808080u};
#pragma unroll
        for (int i = 0; i < 16; ++i) w[i] = signed_byte_to_float(words[i / 4], i % 4);
        scale = half_to_float(raw.d);
    }
};

// Copies a stage: spans s0 + 32i + l (i < kStageSpans) of a row by lane l, and for Q8_0 the stage's 64 block
// scales (16 bytes a lane, lanes 0..7). kWhole: every span exists (no checks, constant offsets); else none past
// the row and no scale past the row's scales.
template <class F, bool kWhole>
__device__ __forceinline__ void stage_spans(const uint8_t* row, int K, int s0, uint8_t* stage) {
    const uint8_t* src = row + 16 * ((size_t) s0 + lane());
    uint8_t* dst = stage + 16 * lane();
    int spans = K / F::kSpan;
#pragma unroll
    for (int i = 0; i < kStageSpans; ++i) {
        if (kWhole) {
            copy_async_16(dst + kWarp * 16 * i, src + kWarp * 16 * i);
        } else {
            int s = s0 + kWarp * i + lane();
            copy_async_16(dst + kWarp * 16 * i, row + 16 * (size_t) min(s, spans - 1), s < spans ? 16 : 0);
        }
    }
    if (F::kScaleBytes > 0 && lane() < F::kScaleBytes / 16) {
        int block = s0 / 2 + 8 * lane(), blocks = K / 32;
        uint8_t* to = stage + kStageSpans * kWarp * 16 + 16 * lane();
        if (kWhole) copy_async_16(to, row + K + 2 * (size_t) block);
        else copy_async_16(to, row + K + 2 * (size_t) min(block, blocks - 1), block < blocks ? min(16, 2 * (blocks - block)) : 0);
    }
}

// Span s0 + 32i + lane of a stage.
template <class F> __device__ __forceinline__ typename F::Raw read_span(const uint8_t* stage, int i) {
    typename F::Raw raw;
    raw.q = *reinterpret_cast<const uint4*>(stage + kWarp * 16 * i + 16 * lane());
    if constexpr (F::kScaleBytes > 0) {
        raw.d = *reinterpret_cast<const uint16_t*>(stage + kStageSpans * kWarp * 16 + 2 * (kWarp / 2 * i + lane() / 2));
    }
    return raw;
}

// Which matrix of a grouped launch output row o belongs to, and its row within that matrix.
struct OutputRow {
    int matrix, row;
};

__device__ __forceinline__ bool locate(int o, int n0, int n1, int n2, OutputRow& out) {
    if (o < n0) { out = OutputRow{0, o}; return true; }
    o -= n0;
    if (o < n1) { out = OutputRow{1, o}; return true; }
    o -= n1;
    if (o < n2) { out = OutputRow{2, o}; return true; }
    return false;
}

// a + w[0] x[0] + w[1] x[1] + ... + w[n-1] x[n-1], added in element order (n a multiple of 4; x 16-byte aligned).
template <int n>
__device__ __forceinline__ float dot_add(const float* w, const float4* __restrict__ x, float a) {
#pragma unroll
    for (int i = 0; i < n / 4; ++i) {
        float4 v = x[i];
        a += w[4 * i] * v.x;
        a += w[4 * i + 1] * v.y;
        a += w[4 * i + 2] * v.z;
        a += w[4 * i + 3] * v.w;
    }
    return a;
}

// acc[r] += the span times its activations in row r (xs: the span's first element in row 0; rows K apart).
template <class F, int T, bool kExact>
__device__ __forceinline__ void flat_span(const typename F::Raw& raw, const float* __restrict__ xs, int K, int R, float* acc) {
    float w[F::kSpan];
    float scale = 1.0f;
    F::decode(raw, w, scale);
#pragma unroll
    for (int r = 0; r < T; ++r) {
        if (kExact || r < R) {
            const float4* xr = reinterpret_cast<const float4*>(xs + (size_t) r * K);
            if (F::kScaled) {
                acc[r] += scale * dot_add<F::kSpan>(w, xr, 0.0f);
            } else {
                acc[r] = dot_add<F::kSpan>(w, xr, acc[r]);
            }
        }
    }
}

// One step of a warp's flat matvec: the stage's spans times the activations (kWhole: every span exists).
template <class F, int T, bool kExact, int kRows, bool kWhole>
__device__ __forceinline__ void flat_step(const uint8_t* stage, const float* __restrict__ xt, int firstSpan, int spans, int K,
                                          int R, float (*acc)[T]) {
    // Long verifications (12 or 17 rows) unrolled over all 8 spans would not fit the registers.
#pragma unroll(T > 8 ? 1 : kStageSpans)
    for (int i = 0; i < kStageSpans; ++i) {
        if (kWhole || firstSpan + kWarp * i + (int) lane() < spans) {
#pragma unroll
            for (int j = 0; j < kRows; ++j) {
                flat_span<F, T, kExact>(read_span<F>(stage + j * F::kBytes, i), xt + kWarp * F::kSpan * i, K, R, acc[j]);
            }
        }
    }
}

// Every lane's share of kRows weight rows (rows[j]) against the activations, into acc[j][r]. Step t takes lane
// l's spans 32(kStageSpans t + i) + l, i = 0..kStageSpans-1: the lane's spans in increasing order, as always. The
// next step's weights are in flight (cp.async into the other stage of this warp's pair, in dynamic shared memory)
// while step t multiplies; the activations are ordinary loads, hits in L1/L2. The loop runs whole steps only,
// without checks; the last whole step and a partial one (K not a multiple of 32 spans) are peeled off after it.
template <class F, int T, bool kExact, int kRows>
__device__ __forceinline__ void flat_rows(const uint8_t* const* rows, const float* __restrict__ x, int K, int R,
                                          float (*acc)[T]) {
    uint8_t* ring = dynamic_shared<uint8_t>() + (size_t) warp() * kMatvecStages * kRows * F::kBytes;
    constexpr int kStep = kWarp * kStageSpans;
    int spans = K / F::kSpan;
    int whole = spans / kStep;
    bool partial = whole * kStep < spans;
    const float* xl = x + (size_t) lane() * F::kSpan;
    auto stage_of = [&](int t) { return ring + (t % kMatvecStages) * kRows * F::kBytes; };
    auto x_of = [&](int t) { return xl + (size_t) kStep * t * F::kSpan; };
    // Every thread commits one group a step, empty or not, so copy_wait<1> means "this step's copies landed";
    // the __syncwarp after it publishes the other lanes' copies (Q8_0's scales), the one after the multiply
    // keeps a stage until every lane has read it.
#pragma unroll
    for (int j = 0; j < kRows; ++j) {
        if (whole > 0) stage_spans<F, true>(rows[j], K, 0, stage_of(0) + j * F::kBytes);
        else stage_spans<F, false>(rows[j], K, 0, stage_of(0) + j * F::kBytes);
    }
    copy_commit();
#pragma unroll 1
    for (int t = 0; t + 1 < whole; ++t) {
#pragma unroll
        for (int j = 0; j < kRows; ++j) stage_spans<F, true>(rows[j], K, kStep * (t + 1), stage_of(t + 1) + j * F::kBytes);
        copy_commit();
        copy_wait<kMatvecStages - 1>();
        __syncwarp();
        flat_step<F, T, kExact, kRows, true>(stage_of(t), x_of(t), kStep * t, spans, K, R, acc);
        __syncwarp();
    }
    if (whole > 0) {
        int t = whole - 1;
        if (partial) {
#pragma unroll
            for (int j = 0; j < kRows; ++j) stage_spans<F, false>(rows[j], K, kStep * whole, stage_of(whole) + j * F::kBytes);
        }
        copy_commit();
        copy_wait<kMatvecStages - 1>();
        __syncwarp();
        flat_step<F, T, kExact, kRows, true>(stage_of(t), x_of(t), kStep * t, spans, K, R, acc);
        __syncwarp();
    }
    if (partial) {
        copy_commit();
        copy_wait<kMatvecStages - 1>();
        __syncwarp();
        flat_step<F, T, kExact, kRows, false>(stage_of(whole), x_of(whole), kStep * whole, spans, K, R, acc);
    }
}

template <class F, int T, bool kExact, int kRows>
__device__ __forceinline__ void unit_rows(const uint8_t* const* rows, const float* __restrict__ x, int K, int R,
                                          float (*acc)[T]) {
    int units = K / F::kUnit;
#pragma unroll(kRows == 1 ? 2 : 1)
    for (int u = lane(); u < units; u += kWarp) {
#pragma unroll
        for (int j = 0; j < kRows; ++j) {
            float w[F::kUnit];
            F::decode(rows[j], K, u, w);
#pragma unroll
            for (int r = 0; r < T; ++r) {
                if (kExact || r < R) {
                    const float4* xr = reinterpret_cast<const float4*>(x + (size_t) r * K + (size_t) u * F::kUnit);
                    acc[j][r] += dot_add<F::kUnit>(w, xr, 0.0f);
                }
            }
        }
    }
}

// The lane partition of a format: flat_rows for the Flat* formats, unit_rows for the others.
template <class F> struct Partition {
    template <int T, bool kExact, int kRows>
    static __device__ __forceinline__ void rows(const uint8_t* const* rows, const float* x, int K, int R, float (*acc)[T]) {
        unit_rows<F, T, kExact, kRows>(rows, x, K, R, acc);
    }
};
#define TANDEM_FLAT_PARTITION(Flat)                                                                                 \
    template <> struct Partition<Flat> {                                                                            \
        template <int T, bool kExact, int kRows>                                                                    \
        static __device__ __forceinline__ void rows(const uint8_t* const* rows, const float* x, int K, int R, float (*acc)[T]) { \
            flat_rows<Flat, T, kExact, kRows>(rows, x, K, R, acc);                                                  \
        }                                                                                                           \
    };
TANDEM_FLAT_PARTITION(FlatF32)
TANDEM_FLAT_PARTITION(FlatF16)
TANDEM_FLAT_PARTITION(FlatBF16)
TANDEM_FLAT_PARTITION(FlatQ8_0)
#undef TANDEM_FLAT_PARTITION

// The residual epilogue (one matrix, y = [R][n]): the launch's last block to finish adds y into the residual
// stream and normalises it for the next block of the model, as rmsnorm_residual would in a launch of its own.
// Every block counts itself done after its outputs are visible device-wide; the last one (the count it sees is
// gridDim.x - 1) reads them all and resets the counter for the next launch on the stream. Not a template: one
// copy of its shared words serves every instantiation (the host emulation keeps them in thread-local storage).
__device__ __forceinline__ void residual_epilogue(const float* __restrict__ y, int n, int R, float* __restrict__ residual,
                                                  const float* __restrict__ normWeight, float* __restrict__ normOut,
                                                  float eps, unsigned* __restrict__ done) {
    __shared__ unsigned isLast;
    __shared__ float scratch[kMatvecThreads / kWarp];
    __syncthreads();
    if (threadIdx.x == 0) {
        __threadfence();
        isLast = atomicAdd(done, 1u) == gridDim.x - 1;
    }
    __syncthreads();
    if (!isLast) return;  // uniform over the block
    __threadfence();
    for (int r = 0; r < R; ++r) {
        residual_rms_scale_store<kMatvecThreads>(residual + (size_t) r * n, y + (size_t) r * n, normWeight,
                                                 normOut + (size_t) r * n, n, eps, scratch);
    }
    if (threadIdx.x == 0) *done = 0;
}

template <class F, int T, bool kExact>
__device__ __forceinline__ void matvec(const uint8_t* __restrict__ W0, const uint8_t* __restrict__ W1,
                                       const uint8_t* __restrict__ W2, const float* __restrict__ x,
                                       const float* __restrict__ bias0, const float* __restrict__ bias1,
                                       const float* __restrict__ bias2, float* __restrict__ y0, float* __restrict__ y1,
                                       float* __restrict__ y2, int K, int n0, int n1, int n2, int R,
                                       float* __restrict__ residual, const float* __restrict__ normWeight,
                                       float* __restrict__ normOut, float eps, unsigned* __restrict__ done) {
    OutputRow out;
    // No early return: the residual epilogue below needs every thread of the block at its barriers.
    if (locate(blockIdx.x * (kMatvecThreads / kWarp) + warp(), n0, n1, n2, out)) {
        const uint8_t* W = out.matrix == 0 ? W0 : out.matrix == 1 ? W1 : W2;
        const float* bias = out.matrix == 0 ? bias0 : out.matrix == 1 ? bias1 : bias2;
        float* y = out.matrix == 0 ? y0 : out.matrix == 1 ? y1 : y2;
        int n = out.matrix == 0 ? n0 : out.matrix == 1 ? n1 : n2;
        const uint8_t* rows[1] = {W + (size_t) out.row * F::rowBytes(K)};
        float acc[1][T];
#pragma unroll
        for (int r = 0; r < T; ++r) acc[0][r] = 0.0f;
        Partition<F>::template rows<T, kExact, 1>(rows, x, K, R, acc);
#pragma unroll
        for (int r = 0; r < T; ++r) {
            if (kExact || r < R) {
                float v = warp_sum(acc[0][r]);
                if (lane() == 0) y[(size_t) r * n + out.row] = bias != nullptr ? v + bias[out.row] : v;
            }
        }
    }
    if (residual != nullptr) residual_epilogue(y0, n0, R, residual, normWeight, normOut, eps, done);  // uniform
}

template <class F, int T, bool kExact>
__device__ __forceinline__ void matvec_swiglu(const uint8_t* __restrict__ Wg, const uint8_t* __restrict__ Wu,
                                              const float* __restrict__ x, float* __restrict__ y, int K, int N, int R) {
    int o = blockIdx.x * (kGatedThreads / kWarp) + warp();
    if (o >= N) return;
    const uint8_t* rows[2] = {Wg + (size_t) o * F::rowBytes(K), Wu + (size_t) o * F::rowBytes(K)};
    float acc[2][T];
#pragma unroll
    for (int r = 0; r < T; ++r) acc[0][r] = acc[1][r] = 0.0f;
    Partition<F>::template rows<T, kExact, 2>(rows, x, K, R, acc);
#pragma unroll
    for (int r = 0; r < T; ++r) {
        if (kExact || r < R) {
            float g = warp_sum(acc[0][r]);
            float u = warp_sum(acc[1][r]);
            if (lane() == 0) y[(size_t) r * N + o] = g / (1.0f + expf(-g)) * u;
        }
    }
}

}  // namespace tandem

#define TANDEM_MATVEC_ONE(type, Format, T, exact)                                                                      \
    extern "C" __global__ void __launch_bounds__(tandem::kMatvecThreads)                                              \
        matvec_##type##_r##T(const uint8_t* __restrict__ W0, const uint8_t* __restrict__ W1,                          \
                             const uint8_t* __restrict__ W2, const float* __restrict__ x,                             \
                             const float* __restrict__ bias0, const float* __restrict__ bias1,                        \
                             const float* __restrict__ bias2, float* __restrict__ y0, float* __restrict__ y1,         \
                             float* __restrict__ y2, int K, int n0, int n1, int n2, int R,                            \
                             float* __restrict__ residual, const float* __restrict__ normWeight,                      \
                             float* __restrict__ normOut, float eps, unsigned* __restrict__ done) {                   \
        tandem::matvec<tandem::Format, T, exact>(W0, W1, W2, x, bias0, bias1, bias2, y0, y1, y2, K, n0, n1, n2, R,    \
                                                 residual, normWeight, normOut, eps, done);                           \
    }                                                                                                                 \
    TANDEM_EXPORT(matvec_##type##_r##T,                                                                               \
                  (const uint8_t* W0, const uint8_t* W1, const uint8_t* W2, const float* x, const float* bias0,       \
                   const float* bias1, const float* bias2, float* y0, float* y1, float* y2, int K, int n0, int n1,    \
                   int n2, int R, float* residual, const float* normWeight, float* normOut, float eps,                \
                   unsigned* done),                                                                                   \
                  (W0, W1, W2, x, bias0, bias1, bias2, y0, y1, y2, K, n0, n1, n2, R, residual, normWeight, normOut,   \
                   eps, done))

// The gated form exists for exact row counts 1..8 only (LaunchGeometry.MATVEC_GATED_MAX_ROWS): with twice the
// accumulators, longer verifications would spill; they run two matvecs and the swiglu kernel instead.
#define TANDEM_MATVEC_GATED(type, Format, T)                                                                          \
    extern "C" __global__ void __launch_bounds__(tandem::kGatedThreads)                                              \
        matvec_swiglu_##type##_r##T(const uint8_t* __restrict__ Wg, const uint8_t* __restrict__ Wu,                   \
                                    const float* __restrict__ x, float* __restrict__ y, int K, int N, int R) {        \
        tandem::matvec_swiglu<tandem::Format, T, true>(Wg, Wu, x, y, K, N, R);                                        \
    }                                                                                                                 \
    TANDEM_EXPORT(matvec_swiglu_##type##_r##T,                                                                        \
                  (const uint8_t* Wg, const uint8_t* Wu, const float* x, float* y, int K, int N, int R),              \
                  (Wg, Wu, x, y, K, N, R))

// The row counts of LaunchGeometry.MATVEC_ROW_COUNTS: exact 1..8, then up to 12 and up to 17.
#define TANDEM_MATVEC(type, Format)                                                          \
    TANDEM_MATVEC_ONE(type, Format, 1, true) TANDEM_MATVEC_GATED(type, Format, 1)            \
    TANDEM_MATVEC_ONE(type, Format, 2, true) TANDEM_MATVEC_GATED(type, Format, 2)            \
    TANDEM_MATVEC_ONE(type, Format, 3, true) TANDEM_MATVEC_GATED(type, Format, 3)            \
    TANDEM_MATVEC_ONE(type, Format, 4, true) TANDEM_MATVEC_GATED(type, Format, 4)            \
    TANDEM_MATVEC_ONE(type, Format, 5, true) TANDEM_MATVEC_GATED(type, Format, 5)            \
    TANDEM_MATVEC_ONE(type, Format, 6, true) TANDEM_MATVEC_GATED(type, Format, 6)            \
    TANDEM_MATVEC_ONE(type, Format, 7, true) TANDEM_MATVEC_GATED(type, Format, 7)            \
    TANDEM_MATVEC_ONE(type, Format, 8, true) TANDEM_MATVEC_GATED(type, Format, 8)            \
    TANDEM_MATVEC_ONE(type, Format, 12, false)                                               \
    TANDEM_MATVEC_ONE(type, Format, 17, false)

TANDEM_MATVEC(f32, FlatF32)
TANDEM_MATVEC(f16, FlatF16)
TANDEM_MATVEC(bf16, FlatBF16)
TANDEM_MATVEC(q8_0, FlatQ8_0)
TANDEM_MATVEC(q4_0, Q4_0)
TANDEM_MATVEC(q4_k, Q4_K)
TANDEM_MATVEC(q5_k, Q5_K)
TANDEM_MATVEC(q6_k, Q6_K)
