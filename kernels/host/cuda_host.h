// Host emulation of the CUDA subset Tandem's kernels use (see DESIGN.md, "CUDA without a GPU").
//
// Included (g++ -include) before every kernels/*.cu when building the host library. Each block's threads run
// as cooperative fibers on one OS thread; a fiber gives up the CPU only at __syncthreads() and at warp
// collectives, so the code between two of them runs as one uninterrupted step, exactly as CUDA allows.
// Blocks run one after another on a few OS threads; a block never moves between OS threads, so
// `__shared__` (static thread_local storage) is per block as on the GPU.
#pragma once

#include <cfloat>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <utility>

#define TANDEM_HOST 1

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// Static shared memory: one instance per OS thread, and an OS thread runs one block at a time.
#define __shared__ static thread_local

struct uint3 { unsigned x, y, z; };
struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct __align__(16) float4 { float x, y, z, w; };
struct __align__(8) float2 { float x, y; };
struct __align__(16) uint4 { unsigned x, y, z, w; };
struct __align__(8) uint2 { unsigned x, y; };

namespace tandem_host {

struct Fiber;
struct Block;

// The fiber and block running now on this OS thread.
// initial-exec: read at every threadIdx and lane query; the default model for a shared library costs a
// __tls_get_addr call each time. Two pointers fit any static TLS surplus left for dlopen.
extern thread_local Fiber* current_fiber __attribute__((tls_model("initial-exec")));
extern thread_local Block* current_block __attribute__((tls_model("initial-exec")));

const uint3& thread_index();
const uint3& block_index();
const dim3& block_dim();
const dim3& grid_dim();
unsigned char* dynamic_shared();

// Blocks the calling fiber until every live thread of its block has arrived.
void block_barrier();
// Publishes 8 bytes for the caller's lane, waits for the whole warp, and returns what lane `src` published
// (or the caller's own value when src is outside the warp).
uint64_t warp_exchange(uint64_t mine, int src);
int lane_id();

template <class T> __forceinline__ uint64_t to_bits(T v) {
    static_assert(sizeof(T) <= 8, "warp shuffles carry at most 8 bytes");
    uint64_t b = 0;
    std::memcpy(&b, &v, sizeof(T));
    return b;
}
template <class T> __forceinline__ T from_bits(uint64_t b) {
    T v;
    std::memcpy(&v, &b, sizeof(T));
    return v;
}

// Runs kernel() for every thread of every block of the grid. Returns 0, or a non-zero code with the
// message in last_error().
int launch(dim3 grid, dim3 block, unsigned shared_bytes, const std::function<void()>& kernel);

}  // namespace tandem_host

#define threadIdx (tandem_host::thread_index())
#define blockIdx (tandem_host::block_index())
#define blockDim (tandem_host::block_dim())
#define gridDim (tandem_host::grid_dim())
#define warpSize 32

inline void __syncthreads() { tandem_host::block_barrier(); }
inline void __syncwarp(unsigned = 0xffffffffu) { tandem_host::warp_exchange(0, 0); }

template <class T> inline T __shfl_xor_sync(unsigned, T v, int laneMask, int width = 32) {
    int lane = tandem_host::lane_id();
    int src = lane ^ laneMask;
    // A lane may read from its own or an earlier group of `width` lanes, never a later one.
    if ((src / width) > (lane / width)) src = lane;
    return tandem_host::from_bits<T>(tandem_host::warp_exchange(tandem_host::to_bits(v), src));
}
template <class T> inline T __shfl_down_sync(unsigned, T v, unsigned delta, int width = 32) {
    int lane = tandem_host::lane_id();
    int src = (lane % width) + (int) delta < width ? lane + (int) delta : lane;
    return tandem_host::from_bits<T>(tandem_host::warp_exchange(tandem_host::to_bits(v), src));
}
template <class T> inline T __shfl_sync(unsigned, T v, int srcLane, int width = 32) {
    int lane = tandem_host::lane_id();
    int src = (lane / width) * width + (srcLane % width);
    return tandem_host::from_bits<T>(tandem_host::warp_exchange(tandem_host::to_bits(v), src));
}

// Atomics: blocks of one grid may run on different OS threads.
template <class T> inline T atomicAdd(T* p, T v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
inline float atomicAdd(float* p, float v) {
    float old, desired;
    __atomic_load(p, &old, __ATOMIC_RELAXED);
    do {
        desired = old + v;
    } while (!__atomic_compare_exchange(p, &old, &desired, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    return old;
}
template <class T> inline T atomicMax(T* p, T v) {
    T old = __atomic_load_n(p, __ATOMIC_RELAXED);
    while (old < v && !__atomic_compare_exchange_n(p, &old, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {}
    return old;
}
template <class T> inline T atomicMin(T* p, T v) {
    T old = __atomic_load_n(p, __ATOMIC_RELAXED);
    while (old > v && !__atomic_compare_exchange_n(p, &old, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {}
    return old;
}
template <class T> inline T atomicExch(T* p, T v) { return __atomic_exchange_n(p, v, __ATOMIC_RELAXED); }
template <class T> inline T atomicCAS(T* p, T expected, T desired) {
    __atomic_compare_exchange_n(p, &expected, desired, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    return expected;
}
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

// Loads through the read-only cache are plain loads here.
template <class T> inline T __ldg(const T* p) { return *p; }

// CUDA's integer min/max overloads.
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }

inline int __float_as_int(float f) {
    int i;
    std::memcpy(&i, &f, 4);
    return i;
}

inline float __int_as_float(int i) {
    float f;
    std::memcpy(&f, &i, 4);
    return f;
}
inline float __uint_as_float(unsigned i) {
    float f;
    std::memcpy(&f, &i, 4);
    return f;
}
// Byte i of the result is byte (s >> 4i) & 7 of the 8 bytes {y:x} (x = bytes 0..3), as PRMT does in its default mode.
inline unsigned __byte_perm(unsigned x, unsigned y, unsigned s) {
    uint64_t bytes = ((uint64_t) y << 32) | x;
    unsigned r = 0;
    for (int i = 0; i < 4; ++i) r |= (unsigned) ((bytes >> (8 * ((s >> (4 * i)) & 7))) & 0xff) << (8 * i);
    return r;
}

inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }

// half and bfloat16: storage types with exact widening and round-to-nearest-even narrowing.
struct __half { unsigned short x; };
struct __nv_bfloat16 { unsigned short x; };
typedef __half half;

inline __half __ushort_as_half(unsigned short b) { return __half{b}; }
inline unsigned short __half_as_ushort(__half h) { return h.x; }
inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short b) { return __nv_bfloat16{b}; }
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 h) { return h.x; }

inline float __half2float(__half h) {
    unsigned sign = (unsigned) (h.x & 0x8000u) << 16;
    unsigned exp = (h.x >> 10) & 0x1f;
    unsigned man = h.x & 0x3ffu;
    unsigned bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man == 0) {
        bits = sign;
    } else {  // subnormal half: normalise
        int e = -1;
        do { man <<= 1; ++e; } while ((man & 0x400u) == 0);
        bits = sign | ((unsigned) (112 - e) << 23) | ((man & 0x3ffu) << 13);
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

inline __half __float2half(float f) {
    unsigned x;
    std::memcpy(&x, &f, 4);
    unsigned short sign = (unsigned short) ((x >> 16) & 0x8000u);
    unsigned absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) return __half{(unsigned short) (sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0))};
    if (absx >= 0x477ff000u) return __half{(unsigned short) (sign | 0x7c00u)};  // rounds to infinity
    if (absx < 0x33000001u) return __half{sign};                                // rounds to zero
    int exp = (int) (absx >> 23) - 127;
    unsigned man = (absx & 0x7fffffu) | 0x800000u;
    int shift = exp >= -14 ? 13 : 13 + (-14 - exp);
    unsigned rounded = man >> shift;
    unsigned rest = man & ((1u << shift) - 1);
    unsigned halfway = 1u << (shift - 1);
    if (rest > halfway || (rest == halfway && (rounded & 1))) ++rounded;
    unsigned bits = exp >= -14 ? (((unsigned) (exp + 15) << 10) + (rounded - 0x400u)) : rounded;
    return __half{(unsigned short) (sign | bits)};
}

inline float __bfloat162float(__nv_bfloat16 b) {
    unsigned bits = (unsigned) b.x << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

inline __nv_bfloat16 __float2bfloat16(float f) {
    unsigned x;
    std::memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return __nv_bfloat16{(unsigned short) ((x >> 16) | 0x40u)};
    x += 0x7fffu + ((x >> 16) & 1u);
    return __nv_bfloat16{(unsigned short) (x >> 16)};
}

// CUDA's default conversions round to nearest even; the _rn names say so explicitly.
inline __half __float2half_rn(float f) { return __float2half(f); }
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __float2bfloat16(f); }

// One C entry point per kernel: tandem_<name>(grid xyz, block xyz, dynamic shared bytes, kernel args...).
#define TANDEM_STRIP(...) __VA_ARGS__
#define TANDEM_EXPORT(name, params, args)                                                              \
    extern "C" __attribute__((visibility("default"))) int tandem_##name(                             \
        unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, unsigned shared, \
        TANDEM_STRIP params) {                                                                         \
        return tandem_host::launch(dim3(gx, gy, gz), dim3(bx, by, bz), shared, [=] { name args; });    \
    }                                                                                                  \
    TANDEM_EXPORT_BOUND(name)

// For the emulated CUDA driver (native-build/emulated-driver/): cuLaunchKernel's `void** kernelParams` bound to
// the kernel's own C++ signature. tandem_params_<name> copies each argument (sizeof of its parameter type) into
// 8-byte slots when the launch is enqueued, as cuLaunchKernel copies them; tandem_bound_<name> runs the grid
// from the slots later, on the stream. Both return -1 for a kernel with more than `capacity` parameters.
namespace tandem_host {
template <class... A> int pack_params(void (*)(A...), void* const* params, uint64_t* slots, int capacity) {
    if ((int) sizeof...(A) > capacity) return -1;
    int i = 0;
    ((std::memset(&slots[i], 0, 8), std::memcpy(&slots[i], params[i], sizeof(A)), ++i), ...);
    return (int) sizeof...(A);
}
template <class... A, std::size_t... I>
int launch_slots(void (*k)(A...), dim3 g, dim3 b, unsigned s, const uint64_t* slots, std::index_sequence<I...>) {
    return launch(g, b, s, [=] { k(from_bits<A>(slots[I])...); });
}
template <class... A> int launch_packed(void (*k)(A...), dim3 g, dim3 b, unsigned s, const uint64_t* slots) {
    return launch_slots(k, g, b, s, slots, std::index_sequence_for<A...>{});
}
}  // namespace tandem_host
#define TANDEM_EXPORT_BOUND(name)                                                                         \
    extern "C" __attribute__((visibility("default"))) int tandem_params_##name(void* const* params,     \
                                                                               uint64_t* slots, int n) { \
        return tandem_host::pack_params(&name, params, slots, n);                                        \
    }                                                                                                    \
    extern "C" __attribute__((visibility("default"))) int tandem_bound_##name(                          \
        unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, unsigned shared,   \
        const uint64_t* slots) {                                                                         \
        return tandem_host::launch_packed(&name, dim3(gx, gy, gz), dim3(bx, by, bz), shared, slots);     \
    }
