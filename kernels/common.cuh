// Shared device helpers for Tandem's kernels. Compiles with nvcc and, through kernels/host/cuda_host.h, with g++.
#pragma once

#ifdef __CUDACC__
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
// Host entry points exist only in the host-emulation build.
#define TANDEM_EXPORT(name, params, args)
#else
#include <stdint.h>
#ifndef TANDEM_HOST
#error "host builds must -include kernels/host/cuda_host.h"
#endif
#endif

namespace tandem {

constexpr int kWarp = 32;
// The most activation rows one matvec launch takes (decode: 1; verification of 16 draft tokens: 17).
constexpr int kMaxRows = 17;

// Dynamic shared memory (the launch's sharedBytes), 16-byte aligned.
template <class T> __device__ __forceinline__ T* dynamic_shared() {
#ifdef __CUDACC__
    extern __shared__ __align__(16) unsigned char tandem_dynamic_shared[];
    return reinterpret_cast<T*>(tandem_dynamic_shared);
#else
    return reinterpret_cast<T*>(tandem_host::dynamic_shared());
#endif
}

__device__ __forceinline__ float half_to_float(uint16_t bits) { return __half2float(__ushort_as_half(bits)); }
__device__ __forceinline__ float bf16_to_float(uint16_t bits) { return __bfloat162float(__ushort_as_bfloat16(bits)); }

__device__ __forceinline__ int lane() { return (int) (threadIdx.x & (kWarp - 1)); }
__device__ __forceinline__ int warp() { return (int) (threadIdx.x / kWarp); }

// Sum over the 32 lanes by a fixed xor butterfly: every lane gets the same bits, whatever the launch.
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int m = 16; m > 0; m >>= 1) v += __shfl_xor_sync(0xffffffffu, v, m);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int m = 16; m > 0; m >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, m));
    return v;
}

// Sum over a block of `kThreads` threads (a multiple of 32): warp butterflies, then warp 0 adds the warp sums
// by butterfly. `scratch` holds kThreads/32 floats of shared memory. All threads get the result.
template <int kThreads> __device__ __forceinline__ float block_sum(float v, float* scratch) {
    static_assert(kThreads % kWarp == 0 && kThreads <= kWarp * kWarp, "block_sum needs whole warps");
    v = warp_sum(v);
    if (lane() == 0) scratch[warp()] = v;
    __syncthreads();
    float s = lane() < kThreads / kWarp ? scratch[lane()] : 0.0f;
    s = warp_sum(s);
    __syncthreads();  // scratch may be reused right after
    return s;
}

template <int kThreads> __device__ __forceinline__ float block_max(float v, float* scratch) {
    v = warp_max(v);
    if (lane() == 0) scratch[warp()] = v;
    __syncthreads();
    float s = lane() < kThreads / kWarp ? scratch[lane()] : -INFINITY;
    s = warp_max(s);
    __syncthreads();
    return s;
}

// Weight loads. Every weight byte is read once per pass, so these stream past L1 (no allocation there: SASS
// LDG.E.NA) instead of evicting the activations that every output row re-reads; the static report
// (native-build/kernel-report.sh) counts exactly these loads as weight bytes. Only for read-only weights.
__device__ __forceinline__ uint16_t load_u16(const uint8_t* p) {
#ifdef __CUDACC__
    unsigned short v;
    asm("ld.global.nc.L1::no_allocate.u16 %0, [%1];" : "=h"(v) : "l"(p));
    return v;
#else
    return *reinterpret_cast<const uint16_t*>(p);
#endif
}
__device__ __forceinline__ uint2 load_8(const uint8_t* p) {
#ifdef __CUDACC__
    uint2 v;
    asm("ld.global.nc.L1::no_allocate.v2.u32 {%0, %1}, [%2];" : "=r"(v.x), "=r"(v.y) : "l"(p));
    return v;
#else
    return *reinterpret_cast<const uint2*>(p);
#endif
}
__device__ __forceinline__ uint4 load_16(const uint8_t* p) {
#ifdef __CUDACC__
    uint4 v;
    asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
        : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
    return v;
#else
    return *reinterpret_cast<const uint4*>(p);
#endif
}

// Asynchronous copies of weights into shared memory (cp.async, sm_80+): a warp keeps several stages of its
// weights in flight whatever its register budget, since the bytes land in shared memory, not registers. `bytes`
// (0..16) are copied from global memory and the rest of the 16 zero-filled; .cg bypasses L1. A thread's copies
// become visible to it after copy_wait<N>() (at most N of its committed groups still pending), to its warp after
// a __syncwarp() that follows.
__device__ __forceinline__ void copy_async_16(void* shared, const void* global, int bytes) {
#ifdef __CUDACC__
    unsigned dst = (unsigned) __cvta_generic_to_shared(shared);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(global), "r"(bytes) : "memory");
#else
    std::memcpy(shared, global, (size_t) bytes);
    std::memset(static_cast<uint8_t*>(shared) + bytes, 0, (size_t) (16 - bytes));
#endif
}

__device__ __forceinline__ void copy_async_16(void* shared, const void* global) {
#ifdef __CUDACC__
    unsigned dst = (unsigned) __cvta_generic_to_shared(shared);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(dst), "l"(global) : "memory");
#else
    std::memcpy(shared, global, 16);
#endif
}

__device__ __forceinline__ void copy_commit() {
#ifdef __CUDACC__
    asm volatile("cp.async.commit_group;" ::: "memory");
#endif
}

template <int kPending> __device__ __forceinline__ void copy_wait() {
#ifdef __CUDACC__
    asm volatile("cp.async.wait_group %0;" ::"n"(kPending) : "memory");
#endif
}

// The signed byte i (0..3) of word w as an exact float, without the slow I2F.S8 conversion: with the sign bit
// flipped (wFlipped = w ^ 0x80808080) the byte is q + 128 in 0..255; placed in the low mantissa bits of 2^23
// (one byte permute) it is the float 2^23 + q + 128, and one subtraction leaves q exactly.
__device__ __forceinline__ float signed_byte_to_float(unsigned wFlipped, int i) {
    return __uint_as_float(__byte_perm(wFlipped, 0x4B000000u, 0x7540 | i)) - 8388736.0f;
}

// Byte i (0..15) of four words.
__device__ __forceinline__ int word_byte(const unsigned* words, int i) { return (int) ((words[i / 4] >> (8 * (i % 4))) & 0xffu); }

// Half h (bytes 16h..16h+15) of group g of a half-split array of `groups` 32-byte groups (all first halves, then
// all second halves; see dev.tandem.runtime.cuda.WeightLayout), as 4 words: lanes reading consecutive groups read
// contiguous memory. A format decodes one half before loading the next, which keeps fewer registers live.
__device__ __forceinline__ void load_half(const uint8_t* array, int groups, int g, int h, unsigned* words) {
    uint4 v = load_16(array + 16 * ((size_t) h * groups + g));
    words[0] = v.x; words[1] = v.y; words[2] = v.z; words[3] = v.w;
}

// Weight formats. Each splits a row into units of kUnit consecutive elements and decodes unit u of a row of k
// elements into floats. rowBytes(k) is the distance between rows; k must be a multiple of kUnit (and of the
// format's block size). Rows are 16-byte aligned. F32, F16, BF16, Q4_K and Q5_K rows are the ggml block bytes
// (https://github.com/ggml-org/ggml, ggml-common.h); Q8_0, Q4_0 and Q6_K rows hold the same values repacked at
// upload so that quants load 16 bytes at a time: the layouts are defined in dev.tandem.runtime.cuda.WeightLayout.

struct F32 {
    static constexpr int kUnit = 8;
    static __device__ __forceinline__ size_t rowBytes(int k) { return (size_t) k * 4; }
    static __device__ __forceinline__ void decode(const uint8_t* row, int, int u, float* w) {
        const float4* p = reinterpret_cast<const float4*>(row + (size_t) u * 32);
        float4 a = p[0], b = p[1];
        w[0] = a.x; w[1] = a.y; w[2] = a.z; w[3] = a.w;
        w[4] = b.x; w[5] = b.y; w[6] = b.z; w[7] = b.w;
    }
};

__device__ __forceinline__ void split_halves(uint4 v, uint16_t* h) {
    unsigned words[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        h[2 * i] = (uint16_t) (words[i] & 0xffffu);
        h[2 * i + 1] = (uint16_t) (words[i] >> 16);
    }
}

struct F16 {
    static constexpr int kUnit = 8;
    static __device__ __forceinline__ size_t rowBytes(int k) { return (size_t) k * 2; }
    static __device__ __forceinline__ void decode(const uint8_t* row, int, int u, float* w) {
        uint16_t h[8];
        split_halves(load_16(row + (size_t) u * 16), h);
#pragma unroll
        for (int i = 0; i < 8; ++i) w[i] = half_to_float(h[i]);
    }
};

struct BF16 {
    static constexpr int kUnit = 8;
    static __device__ __forceinline__ size_t rowBytes(int k) { return (size_t) k * 2; }
    static __device__ __forceinline__ void decode(const uint8_t* row, int, int u, float* w) {
        uint16_t h[8];
        split_halves(load_16(row + (size_t) u * 16), h);
#pragma unroll
        for (int i = 0; i < 8; ++i) w[i] = bf16_to_float(h[i]);
    }
};

__device__ __forceinline__ size_t align16(size_t bytes) { return (bytes + 15) & ~(size_t) 15; }

// Q8_0: blocks of 32 {f16 d; int8 q[32]}, value = d * q. Read from the repacked row (WeightLayout): all quants
// in element order, then all scales.
struct Q8_0 {
    static constexpr int kUnit = 32;
    static __device__ __forceinline__ size_t rowBytes(int k) { return align16((size_t) k + (size_t) (k / 32) * 2); }
    static __device__ __forceinline__ void decode(const uint8_t* row, int k, int u, float* w) {
        float d = half_to_float(load_u16(row + k + 2 * (size_t) u));
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            uint4 v = load_16(row + 32 * (size_t) u + 16 * h);
            unsigned q[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
            for (int i = 0; i < 16; ++i) w[16 * h + i] = d * (float) (int8_t) word_byte(q, i);
        }
    }
};

// Q4_0: blocks of 32 {f16 d; uint8 q[16]}; element j < 16 is the low nibble of q[j], element j + 16 its high
// nibble; value = d * (nibble - 8). Read from the repacked row (WeightLayout).
struct Q4_0 {
    static constexpr int kUnit = 32;
    static __device__ __forceinline__ size_t rowBytes(int k) { return align16((size_t) (k / 2) + (size_t) (k / 32) * 2); }
    static __device__ __forceinline__ void decode(const uint8_t* row, int k, int u, float* w) {
        uint4 v = load_16(row + 16 * (size_t) u);
        unsigned q[4] = {v.x, v.y, v.z, v.w};
        float d = half_to_float(load_u16(row + k / 2 + 2 * (size_t) u));
#pragma unroll
        for (int j = 0; j < 16; ++j) {
            int byte = word_byte(q, j);
            w[j] = d * (float) ((byte & 0xf) - 8);
            w[j + 16] = d * (float) ((byte >> 4) - 8);
        }
    }
};

// Q4_K: 144-byte super-blocks of 256 {f16 d; f16 dmin; uint8 scales[12]; uint8 q[128]}. Sub-block c (32
// elements) has a 6-bit scale sc and min m packed in `scales`; its nibbles are the low (c even) or high (c odd)
// halves of q[32*(c/2) .. +32]; value = d*sc*nibble - dmin*m. A unit is one sub-block.
struct Q4_K {
    static constexpr int kUnit = 32;
    static __device__ __forceinline__ size_t rowBytes(int k) { return (size_t) (k / 256) * 144; }
    static __device__ __forceinline__ void scale_min(const uint8_t* s, int c, int& sc, int& m) {
        if (c < 4) {
            sc = s[c] & 63;
            m = s[c + 4] & 63;
        } else {
            sc = (s[c + 4] & 0xf) | ((s[c - 4] >> 6) << 4);
            m = (s[c + 4] >> 4) | ((s[c] >> 6) << 4);
        }
    }
    static __device__ __forceinline__ void decode(const uint8_t* row, int, int u, float* w) {
        const uint8_t* b = row + (size_t) (u >> 3) * 144;
        int c = u & 7;
        float d = half_to_float(load_u16(b));
        float dmin = half_to_float(load_u16(b + 2));
        int sc, m;
        scale_min(b + 4, c, sc, m);
        float scale = d * (float) sc, shift = dmin * (float) m;
        int nibble = (c & 1) * 4;
        const uint8_t* q = b + 16 + 32 * (c >> 1);  // 16-byte aligned when the row is
        uint4 halves[2] = {load_16(q), load_16(q + 16)};
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            unsigned words[4] = {halves[h].x, halves[h].y, halves[h].z, halves[h].w};
#pragma unroll
            for (int i = 0; i < 16; ++i) {
                int byte = (int) ((words[i / 4] >> (8 * (i % 4))) & 0xffu);
                w[16 * h + i] = scale * (float) ((byte >> nibble) & 0xf) - shift;
            }
        }
    }
};

// Q5_K: 176-byte super-blocks of 256 {f16 d; f16 dmin; uint8 scales[12]; uint8 qh[32]; uint8 qs[128]}. Sub-block
// c (32 elements) has Q4_K's 6-bit scale and min; element l of it takes 4 low bits from qs[32*(c/2) + l] (low
// nibble for c even, high for c odd) and its fifth bit from bit c of qh[l]; value = d*sc*q - dmin*m. A unit is
// one sub-block. 176 = 11 * 16, so qh (offset 16) and qs (offset 48) are 16-byte aligned when the row is.
struct Q5_K {
    static constexpr int kUnit = 32;
    static __device__ __forceinline__ size_t rowBytes(int k) { return (size_t) (k / 256) * 176; }
    static __device__ __forceinline__ void decode(const uint8_t* row, int, int u, float* w) {
        const uint8_t* b = row + (size_t) (u >> 3) * 176;
        int c = u & 7;
        float d = half_to_float(load_u16(b));
        float dmin = half_to_float(load_u16(b + 2));
        int sc, m;
        Q4_K::scale_min(b + 4, c, sc, m);
        float scale = d * (float) sc, shift = dmin * (float) m;
        int nibble = (c & 1) * 4;
        const uint8_t* q = b + 48 + 32 * (c >> 1);
        uint4 lows[2] = {load_16(q), load_16(q + 16)};
        uint4 highs[2] = {load_16(b + 16), load_16(b + 32)};
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            unsigned lw[4] = {lows[h].x, lows[h].y, lows[h].z, lows[h].w};
            unsigned hw[4] = {highs[h].x, highs[h].y, highs[h].z, highs[h].w};
#pragma unroll
            for (int i = 0; i < 16; ++i) {
                int lo = (int) ((lw[i / 4] >> (8 * (i % 4))) & 0xffu);
                int hi = (int) ((hw[i / 4] >> (8 * (i % 4))) & 0xffu);
                int v = ((lo >> nibble) & 0xf) | (((hi >> c) & 1) << 4);
                w[16 * h + i] = scale * (float) v - shift;
            }
        }
    }
};

// Q6_K: super-blocks of 256 {uint8 ql[128]; uint8 qh[64]; int8 scales[16]; f16 d}. In each half (128 elements)
// n, quarter j (32 elements) takes 4 low bits from ql[64n + 32(j&1) + l] (low nibble for j < 2, high for j >= 2)
// and 2 high bits from qh[32n + l] >> 2j; value = d * scales[8n + 2j + l/16] * (q - 32). A unit is one quarter:
// unit u is quarter u&3 of half (u>>2)&1 of super-block u>>3. Read from the repacked row (WeightLayout): the
// quarter's ql bytes are group 4s + 2n + (j&1) of the ql array, its qh bytes group 2s + n of the qh array.
struct Q6_K {
    static constexpr int kUnit = 32;
    static __device__ __forceinline__ size_t rowBytes(int k) {
        return align16((size_t) (k / 2) + (size_t) (k / 4) + (size_t) (k / 16) + (size_t) (k / 256) * 2);
    }
    static __device__ __forceinline__ void decode(const uint8_t* row, int k, int u, float* w) {
        int s = u >> 3, n = (u >> 2) & 1, quarter = u & 3;
        const uint8_t* scales = row + k / 2 + k / 4;
        uint16_t sc = load_u16(scales + 2 * (size_t) u);
        float d = half_to_float(load_u16(scales + k / 16 + 2 * (size_t) s));
        float s0 = d * (float) (int8_t) (sc & 0xff), s1 = d * (float) (int8_t) (sc >> 8);
        int lowShift = quarter < 2 ? 0 : 4, highShift = 2 * quarter;
#pragma unroll
        for (int h = 0; h < 2; ++h) {  // elements 16h..16h+15, scale s0 then s1
            unsigned q[4], hi[4];
            load_half(row, k / 64, 4 * s + 2 * n + (quarter & 1), h, q);
            load_half(row + k / 2, k / 128, 2 * s + n, h, hi);
#pragma unroll
            for (int j = 0; j < 4; ++j) {  // four 6-bit values a word, assembled bytewise in place
                q[j] = ((q[j] >> lowShift) & 0x0f0f0f0fu) | (((hi[j] >> highShift) & 0x03030303u) << 4);
            }
#pragma unroll
            for (int i = 0; i < 16; ++i) w[16 * h + i] = (h == 0 ? s0 : s1) * (float) (word_byte(q, i) - 32);
        }
    }
};

// RMSNorm of one row by a block of kThreads: out = v / sqrt(mean(v^2) + eps) * weight. Thread t sums elements
// t, t+kThreads, ... in order, then block_sum's fixed butterflies: the order depends on K and kThreads only.
// IEEE division and sqrt (no fast math). scratch: kThreads/32 floats of shared memory.
template <int kThreads>
__device__ __forceinline__ void rms_scale_store(const float* __restrict__ v, const float* __restrict__ weight,
                                                float* __restrict__ out, int K, float eps, float* scratch) {
    float ss = 0.0f;
    for (int i = threadIdx.x; i < K; i += kThreads) ss += v[i] * v[i];
    ss = block_sum<kThreads>(ss, scratch);
    float scale = 1.0f / sqrtf(ss / (float) K + eps);
    for (int i = threadIdx.x; i < K; i += kThreads) out[i] = v[i] * scale * weight[i];
}

// residual += delta, then rms_scale_store of the sum. Each thread adds exactly the elements it later reads, so
// no barrier is needed between the add and the sum of squares. (In the matvec epilogue other blocks wrote delta
// before a __threadfence: plain loads see it, as this block never read those lines before. Not __ldcg: a cg load
// in a kernel made ptxas drop the no-allocate hint of its weight loads.)
template <int kThreads>
__device__ __forceinline__ void residual_rms_scale_store(float* __restrict__ residual, const float* __restrict__ delta,
                                                         const float* __restrict__ weight, float* __restrict__ out, int K,
                                                         float eps, float* scratch) {
    for (int i = threadIdx.x; i < K; i += kThreads) residual[i] += delta[i];
    rms_scale_store<kThreads>(residual, weight, out, K, eps, scratch);
}

// RoPE: pair i < rotDim/2 of a head at `position` turns by theta = position * base^(-2i/rotDim) / factors[i]
// (factors: Llama 3 frequency scaling; null = all 1). Normal layout rotates elements (2i, 2i+1), NeoX layout
// (i, i + rotDim/2). The one definition of the angle, for rope and rope_kv_append alike.
__device__ __forceinline__ void rope_cos_sin(int position, int i, int rotDim, float base, const float* __restrict__ factors,
                                             float& c, float& s) {
    float thetaScale = powf(base, -2.0f / (float) rotDim);
    float theta = (float) position * powf(thetaScale, (float) i);
    if (factors != nullptr) theta /= factors[i];
    c = cosf(theta);
    s = sinf(theta);
}

__device__ __forceinline__ void rope_pair(int i, int rotDim, int neox, int& a, int& b) {
    a = neox ? i : 2 * i;
    b = neox ? i + rotDim / 2 : 2 * i + 1;
}

// The rotated pair: (x0 c - x1 s, x0 s + x1 c), with the fused multiply-adds written out so that every kernel
// (and the host emulation) rounds them the same way.
__device__ __forceinline__ void rope_rotate(float x0, float x1, float c, float s, float& a, float& b) {
    a = fmaf(x0, c, -(x1 * s));
    b = fmaf(x0, s, x1 * c);
}

// K/V cache element types (--kv-type): how attention.cu stores a value and reads it back as a float. The
// 16-bit ones round to nearest even on store, as the CPU backend does, and widen exactly on load.
struct KvF32 {
    using Storage = float;
    static __device__ __forceinline__ Storage store(float v) { return v; }
    static __device__ __forceinline__ float load(Storage s) { return s; }
};

struct KvF16 {
    using Storage = uint16_t;
    static __device__ __forceinline__ Storage store(float v) { return __half_as_ushort(__float2half_rn(v)); }
    static __device__ __forceinline__ float load(Storage s) { return half_to_float(s); }
};

struct KvBF16 {
    using Storage = uint16_t;
    static __device__ __forceinline__ Storage store(float v) { return __bfloat16_as_ushort(__float2bfloat16_rn(v)); }
    static __device__ __forceinline__ float load(Storage s) { return bf16_to_float(s); }
};

}  // namespace tandem
