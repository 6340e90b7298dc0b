// An emulated CUDA driver, libcuda.so.1, over the host emulation of kernels/host (native-build/README.md).
//
// JCuda's libJCudaDriver names libcuda.so.1 as a needed library and binds ~300 cu* symbols lazily; this library
// implements the ~60 that Tandem (JCudaGpuDriver, CudaProbe, JCublasGemm through libcublas.so.12) calls, with
// the rules a real driver enforces, and generated stubs (stubs.cpp, made by build-emulated-driver.sh from
// JCuda's own import list) answer CUDA_ERROR_NOT_SUPPORTED for the rest, naming themselves on stderr.
//
// What it models: one device that describes itself as an emulated sm_90 (never mistaken for hardware: its name
// says so); contexts current per thread (a call without one fails); device memory that is host memory filled
// with garbage, not zeroed; pinned host memory; streams as ordered worker threads; events; kernels resolved by
// name from libtandem_host_kernels.so (tandem_params_<name> / tandem_bound_<name>, cuda_host.h); stream capture
// into graphs. Faults: a failing launch, or the one chosen by TANDEM_EMULATED_FAULT_LAUNCH=N (the Nth launch
// run, counting from 1) or tandem_emulated_inject_fault(N), makes the context's error sticky, as a device fault
// does: later calls return it, pending work is skipped, host functions are not called, stream callbacks get it.
#include <dlfcn.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "emulated_cuda.h"

namespace {

using namespace emulated;

constexpr const char* kDeviceName = "Tandem emulated sm_90 (host emulation, not a GPU)";
constexpr int kDriverVersion = 13000;
constexpr int kMaxThreadsPerBlock = 1024;
constexpr int kDefaultSharedPerBlock = 48 * 1024;   // without cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES)
constexpr int kOptInSharedPerBlock = 227 * 1024;    // sm_90's opt-in limit
constexpr int kParamSlots = 64;

void say(const std::string& line) { std::fprintf(stderr, "emulated libcuda: %s\n", line.c_str()); }

bool initialized = false;
std::atomic<long> fault_at{-1};   // the launch (1-based, in run order) that faults; -1: none
std::atomic<long> launches_run{0};

long env_long(const char* name, long fallback) {
    const char* v = std::getenv(name);
    return v && *v ? std::atol(v) : fallback;
}

struct Stream;
struct Capture;

// A context: the device's primary context, the only one Tandem uses (cuCtxCreate is not emulated).
struct Context {
    int refs = 0;
    std::atomic<int> sticky{0};          // a fault's CUresult: every later call on this context returns it
    std::string stickyWhat;
    std::mutex lock;                     // allocations, streams
    std::map<uintptr_t, size_t> device;  // device allocations: address -> bytes
    std::map<uintptr_t, size_t> pinned;  // page-locked host allocations
    size_t allocated = 0;
    std::set<Stream*> streams;
    Stream* nullStream = nullptr;
    std::mutex faultedLock;              // stickyWhat
};

std::mutex global_lock;
Context* primary = nullptr;
thread_local Context* current = nullptr;
thread_local bool in_host_function = false;   // a host function or stream callback must not call CUDA

size_t total_memory() {
    static const size_t bytes = (size_t) env_long("TANDEM_EMULATED_MEMORY_MIB", 80 * 1024) << 20;
    return bytes;
}

void fault(Context* c, CUresult code, const std::string& what) {
    int expected = 0;
    if (c->sticky.compare_exchange_strong(expected, code)) {
        {
            std::lock_guard<std::mutex> l(c->faultedLock);
            c->stickyWhat = what;
        }
        say("device fault (" + std::string(error_name(code)) + "): " + what + "; the context is unusable from now on");
    }
    // Stream waits on events poll the sticky error, so they end too.
}

// Work on a stream: runs on the stream's thread, or is recorded into a graph while capturing.
using Task = std::function<void()>;

struct Stream {
    Context* ctx;
    std::thread worker;
    std::mutex lock;
    std::condition_variable changed;
    std::deque<Task> queue;
    bool running = false;   // a task is executing
    bool closing = false;
    Capture* capture = nullptr;

    explicit Stream(Context* c) : ctx(c) {
        worker = std::thread([this] { loop(); });
    }

    void loop() {
        for (;;) {
            Task t;
            {
                std::unique_lock<std::mutex> l(lock);
                changed.wait(l, [&] { return !queue.empty() || closing; });
                if (queue.empty()) return;
                t = std::move(queue.front());
                queue.pop_front();
                running = true;
            }
            t();
            {
                std::lock_guard<std::mutex> l(lock);
                running = false;
            }
            changed.notify_all();
        }
    }

    void push(Task t) {
        {
            std::lock_guard<std::mutex> l(lock);
            queue.push_back(std::move(t));
        }
        changed.notify_all();
    }

    bool idle() {
        std::lock_guard<std::mutex> l(lock);
        return queue.empty() && !running;
    }

    void drain() {
        std::unique_lock<std::mutex> l(lock);
        changed.wait(l, [&] { return queue.empty() && !running; });
    }

    void stop() {
        {
            std::lock_guard<std::mutex> l(lock);
            closing = true;
        }
        changed.notify_all();
        if (worker.joinable()) worker.join();
    }
};

struct Capture {
    Stream* origin;
    int mode;
    std::thread::id thread;
    std::vector<Task> nodes;
    CUresult invalidated = CUDA_SUCCESS;   // the first violation; cuStreamEndCapture then fails
};

std::mutex capture_lock;
std::set<Capture*> captures;

std::atomic<long> live_graphs{0};   // made by cuStreamEndCapture, not yet destroyed: a test sees a leak

struct Graph {
    std::vector<Task> nodes;
};

struct GraphExec {
    std::vector<Task> nodes;
};

struct Event {
    Context* ctx;
    unsigned flags;
    std::mutex lock;
    std::condition_variable reached;
    uint64_t recorded = 0;    // the latest record's number
    uint64_t completed = 0;   // the latest record the stream has passed
    std::chrono::steady_clock::time_point when = std::chrono::steady_clock::now();
    Capture* capturedBy = nullptr;   // the capture of its latest record, if any
};

struct Module {
    void* library;
    std::map<std::string, int> maxThreads;   // per kernel: its __launch_bounds__ (.maxntid in the fatbin's PTX)
};

struct Function {
    std::string name;
    int (*params)(void* const*, uint64_t*, int);
    int (*bound)(unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, const uint64_t*);
    int maxDynamicShared = kDefaultSharedPerBlock;
    int maxThreads = kMaxThreadsPerBlock;
};

// ----- checks shared by the entry points -----

#define GUARD_INIT() \
    if (!initialized) return CUDA_ERROR_NOT_INITIALIZED;

// Every call that needs a context: one must be current on this thread, CUDA must not be called from a host
// function, and a faulted context answers with its fault.
CUresult need_context(Context** out) {
    if (!initialized) return CUDA_ERROR_NOT_INITIALIZED;
    if (in_host_function) {
        say("a CUDA call from inside a host function or stream callback (not permitted)");
        return CUDA_ERROR_NOT_PERMITTED;
    }
    if (!current) return CUDA_ERROR_INVALID_CONTEXT;
    *out = current;
    int s = current->sticky.load();
    return s ? (CUresult) s : CUDA_SUCCESS;
}

#define NEED_CONTEXT(c)                      \
    Context* c = nullptr;                    \
    {                                        \
        CUresult r_ = need_context(&c);      \
        if (r_ != CUDA_SUCCESS) return r_;   \
    }

// A capture that forbids this thread's "unsafe" calls (allocation, freeing, synchronisation): global mode from
// any thread, thread-local mode from the capturing thread. The call fails and invalidates that capture.
CUresult unsafe_during_capture(const char* call) {
    std::lock_guard<std::mutex> l(capture_lock);
    for (Capture* cap : captures) {
        if (cap->mode == CU_STREAM_CAPTURE_MODE_GLOBAL
                || (cap->mode == CU_STREAM_CAPTURE_MODE_THREAD_LOCAL && cap->thread == std::this_thread::get_id())) {
            say(std::string(call) + " during stream capture (not permitted; the capture is invalidated)");
            if (!cap->invalidated) cap->invalidated = CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
            return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
        }
    }
    return CUDA_SUCCESS;
}

Stream* stream_of(Context* c, CUstream s) {
    if (s) return (Stream*) s;
    std::lock_guard<std::mutex> l(c->lock);
    if (!c->nullStream) c->nullStream = new Stream(c);
    return c->nullStream;
}

// Enqueues `t` on `s`, or adds it to the graph `s` is capturing. Work is skipped once the context has faulted.
void enqueue(Stream* s, Task t) {
    Context* c = s->ctx;
    Task guarded = [c, t = std::move(t)] {
        if (c->sticky.load()) return;
        t();
    };
    {
        std::lock_guard<std::mutex> l(capture_lock);
        if (s->capture) {
            s->capture->nodes.push_back(std::move(guarded));
            return;
        }
    }
    s->push(std::move(guarded));
}

bool capturing(Stream* s) {
    std::lock_guard<std::mutex> l(capture_lock);
    return s->capture != nullptr;
}

void invalidate(Stream* s, CUresult why, const std::string& what) {
    std::lock_guard<std::mutex> l(capture_lock);
    if (s->capture && !s->capture->invalidated) {
        s->capture->invalidated = why;
        say(what + " (the capture is invalidated)");
    }
}

// The device allocation holding [p, p + bytes), or false.
bool in_device(Context* c, uintptr_t p, size_t bytes) {
    std::lock_guard<std::mutex> l(c->lock);
    auto it = c->device.upper_bound(p);
    if (it == c->device.begin()) return false;
    --it;
    return p >= it->first && p + bytes <= it->first + it->second;
}

bool in_pinned(Context* c, uintptr_t p, size_t bytes) {
    std::lock_guard<std::mutex> l(c->lock);
    auto it = c->pinned.upper_bound(p);
    if (it == c->pinned.begin()) return false;
    --it;
    return p >= it->first && p + bytes <= it->first + it->second;
}

CUresult bad_copy(const std::string& what) {
    say(what);
    return CUDA_ERROR_INVALID_VALUE;
}

// Checks an async copy's ends: device ranges inside one allocation, host memory page-locked when captured
// (a pageable copy cannot be part of a graph).
CUresult check_copy(Context* c, Stream* s, const char* call, uintptr_t dst, bool dstDevice, uintptr_t src, bool srcDevice, size_t bytes) {
    if (dstDevice && !in_device(c, dst, bytes)) return bad_copy(std::string(call) + ": destination is not " + std::to_string(bytes) + " bytes of one device allocation");
    if (srcDevice && !in_device(c, src, bytes)) return bad_copy(std::string(call) + ": source is not " + std::to_string(bytes) + " bytes of one device allocation");
    if (capturing(s)) {
        uintptr_t host = !dstDevice ? dst : !srcDevice ? src : 0;
        if (host && !in_pinned(c, host, bytes)) {
            invalidate(s, CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, std::string(call) + " from pageable host memory during stream capture");
            return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
        }
    }
    return CUDA_SUCCESS;
}

uint64_t garbage_seed = 0x9e3779b97f4a7c15ull;

// Fills fresh device memory with garbage, as a GPU's memory is: a kernel that reads what nobody wrote shows it.
void fill_garbage(void* p, size_t bytes) {
    static const bool zero = [] {
        const char* v = std::getenv("TANDEM_EMULATED_FILL");   // "zero": zeroed memory, to tell a read of unwritten memory from other faults
        return v && std::strcmp(v, "zero") == 0;
    }();
    if (zero) {
        std::memset(p, 0, bytes);
        return;
    }
    uint64_t x = __atomic_add_fetch(&garbage_seed, 0x632be59bd9b4e019ull, __ATOMIC_RELAXED) | 1;
    uint64_t* w = (uint64_t*) p;
    size_t n = bytes / 8;
    for (size_t i = 0; i < n; ++i) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        w[i] = x;
    }
    std::memset((char*) p + n * 8, 0xa5, bytes - n * 8);
}

void* host_kernels = nullptr;   // libtandem_host_kernels.so, opened by the first module load

std::string own_directory() {
    Dl_info info;
    if (dladdr((void*) &own_directory, &info) && info.dli_fname) {
        std::string path = info.dli_fname;
        size_t slash = path.rfind('/');
        if (slash != std::string::npos) return path.substr(0, slash);
    }
    return ".";
}

void* open_host_kernels() {
    std::lock_guard<std::mutex> l(global_lock);
    if (host_kernels) return host_kernels;
    const char* env = std::getenv("TANDEM_HOST_KERNELS_LIBRARY");
    std::string path = env && *env ? env : own_directory() + "/libtandem_host_kernels.so";
    host_kernels = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!host_kernels) say("cannot open the host-emulation kernels " + path + ": " + dlerror());
    return host_kernels;
}

// The fatbin header (fatbinary.h's wrapper): magic, version, header size, then the size of the entries.
constexpr uint32_t kFatbinMagic = 0xBA55ED50u;
constexpr uint32_t kZstdMagic = 0xFD2FB528u;

// nvcc 12.8+ compresses fatbin entries with zstd: libzstd (a system library nearly everywhere) is opened when
// present; without it the kernels' launch bounds are not known and only the device limit is checked.
std::string decompress(const unsigned char* p, size_t bytes, size_t plain) {
    uint32_t magic;
    std::memcpy(&magic, p, 4);
    if (magic != kZstdMagic) return std::string((const char*) p, bytes);
    static void* zstd = dlopen("libzstd.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!zstd) return {};
    using Decompress = size_t (*)(void*, size_t, const void*, size_t);
    using IsError = unsigned (*)(size_t);
    auto run = (Decompress) dlsym(zstd, "ZSTD_decompress");
    auto failed = (IsError) dlsym(zstd, "ZSTD_isError");
    if (!run || !failed || plain == 0 || plain > ((size_t) 1 << 31)) return {};
    std::string out(plain, '\0');
    size_t n = run(&out[0], plain, p, bytes);
    if (failed(n)) return {};
    out.resize(n);
    return out;
}

// Each kernel's .maxntid (its __launch_bounds__) from PTX text: ".entry NAME(params)\n.maxntid X, Y, Z\n{".
void read_launch_bounds(const std::string& ptx, std::map<std::string, int>& out) {
    for (size_t at = ptx.find(".entry "); at != std::string::npos; at = ptx.find(".entry ", at + 7)) {
        size_t name = at + 7, open = ptx.find('(', name);
        if (open == std::string::npos) break;
        size_t close = ptx.find(')', open), body = ptx.find('{', open);
        if (close == std::string::npos || body == std::string::npos) break;
        size_t bound = ptx.find(".maxntid", close);
        if (bound == std::string::npos || bound > body) continue;
        unsigned x = 1, y = 1, z = 1;
        if (std::sscanf(ptx.c_str() + bound, ".maxntid %u, %u, %u", &x, &y, &z) >= 1) {
            std::string kernel = ptx.substr(name, open - name);
            while (!kernel.empty() && kernel.back() == ' ') kernel.pop_back();
            out[kernel] = (int) (x * y * z);
        }
    }
}

// Whether `image` is a fatbin holding code for sm_90 (SASS for 90, or PTX 90 or older that the driver could JIT);
// the launch bounds of its kernels from its PTX.
CUresult check_image(const void* image, std::string& why, std::map<std::string, int>& maxThreads) {
    const unsigned char* p = (const unsigned char*) image;
    uint32_t magic;
    std::memcpy(&magic, p, 4);
    if (magic != kFatbinMagic) {
        why = "the module image is not a fatbin (magic " + std::to_string(magic) + ")";
        return CUDA_ERROR_INVALID_IMAGE;
    }
    uint16_t headerSize;
    uint64_t fatSize;
    std::memcpy(&headerSize, p + 6, 2);
    std::memcpy(&fatSize, p + 8, 8);
    // Entries: kind (1 PTX, 2 ELF), version, header size (u32), payload size (u64), ..., arch at byte 28 (u32).
    bool usable = false;
    std::string seen;
    for (uint64_t off = headerSize; off + 32 <= headerSize + fatSize;) {
        uint16_t kind;
        uint32_t entryHeader, arch;
        uint64_t payload;
        std::memcpy(&kind, p + off, 2);
        std::memcpy(&entryHeader, p + off + 4, 4);
        std::memcpy(&payload, p + off + 8, 8);
        std::memcpy(&arch, p + off + 28, 4);
        if (entryHeader < 32 || entryHeader > 4096) break;
        seen += std::string(seen.empty() ? "" : " ") + (kind == 1 ? "ptx " : "sass ") + std::to_string(arch);
        if ((kind == 2 && arch == 90) || (kind == 1 && arch <= 90)) usable = true;
        if (kind == 1 && maxThreads.empty()) {
            uint32_t stored;
            uint64_t plain;
            std::memcpy(&stored, p + off + 16, 4);
            std::memcpy(&plain, p + off + 56, 8);
            if (stored == 0 || stored > payload) stored = (uint32_t) payload;
            read_launch_bounds(decompress(p + off + entryHeader, stored, plain), maxThreads);
        }
        off += entryHeader + payload;
    }
    if (!usable) {
        why = "the fatbin has no code for sm_90 (it holds: " + (seen.empty() ? std::string("nothing readable") : seen) + ")";
        return CUDA_ERROR_NO_BINARY_FOR_GPU;
    }
    return CUDA_SUCCESS;
}

// A launch as it will run: the kernel, its geometry and a copy of its arguments.
void run_launch(Context* c, Function* f, unsigned g[3], unsigned b[3], unsigned shared, const uint64_t* slots) {
    long n = ++launches_run;
    if (n == fault_at.load()) {
        fault(c, CUDA_ERROR_ILLEGAL_ADDRESS, "injected fault at launch " + std::to_string(n) + " (" + f->name + ")");
        return;
    }
    int status = f->bound(g[0], g[1], g[2], b[0], b[1], b[2], shared, slots);
    if (status != 0) {
        using ErrorFn = const char* (*)();
        auto last = (ErrorFn) dlsym(host_kernels, "tandem_host_last_error");
        fault(c, CUDA_ERROR_LAUNCH_FAILED, f->name + ": " + (last ? last() : "failed"));
    }
}

}  // namespace

// ----- the API -----

extern "C" {

EXPORT CUresult cuInit(unsigned flags) {
    if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
    std::lock_guard<std::mutex> l(global_lock);
    if (!initialized) {
        initialized = true;
        long f = env_long("TANDEM_EMULATED_FAULT_LAUNCH", -1);
        if (f > 0) fault_at = f;
    }
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDriverGetVersion(int* version) {
    if (!version) return CUDA_ERROR_INVALID_VALUE;
    *version = kDriverVersion;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGetCount(int* count) {
    GUARD_INIT();
    if (!count) return CUDA_ERROR_INVALID_VALUE;
    *count = 1;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGet(CUdevice* device, int ordinal) {
    GUARD_INIT();
    if (!device) return CUDA_ERROR_INVALID_VALUE;
    if (ordinal != 0) return CUDA_ERROR_INVALID_DEVICE;
    *device = 0;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGetName(char* name, int length, CUdevice device) {
    GUARD_INIT();
    if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
    if (!name || length <= 0) return CUDA_ERROR_INVALID_VALUE;
    std::snprintf(name, (size_t) length, "%s", kDeviceName);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice device) {
    GUARD_INIT();
    if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
    if (!bytes) return CUDA_ERROR_INVALID_VALUE;
    *bytes = total_memory();
    return CUDA_SUCCESS;
}

// An H100 SXM's values, where Tandem or JCuda might ask.
EXPORT CUresult cuDeviceGetAttribute(int* value, int attribute, CUdevice device) {
    GUARD_INIT();
    if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
    if (!value || attribute < 1 || attribute > 150) return CUDA_ERROR_INVALID_VALUE;
    switch (attribute) {
        case 1: *value = kMaxThreadsPerBlock; break;          // MAX_THREADS_PER_BLOCK
        case 2: case 3: *value = 1024; break;                 // MAX_BLOCK_DIM_X, _Y
        case 4: *value = 64; break;                           // MAX_BLOCK_DIM_Z
        case 5: *value = 2147483647; break;                   // MAX_GRID_DIM_X
        case 6: case 7: *value = 65535; break;                // MAX_GRID_DIM_Y, _Z
        case 8: *value = kDefaultSharedPerBlock; break;       // MAX_SHARED_MEMORY_PER_BLOCK
        case 9: *value = 65536; break;                        // TOTAL_CONSTANT_MEMORY
        case 10: *value = 32; break;                          // WARP_SIZE
        case 12: *value = 65536; break;                       // MAX_REGISTERS_PER_BLOCK
        case 13: *value = 1980000; break;                     // CLOCK_RATE (kHz)
        case 16: *value = 132; break;                         // MULTIPROCESSOR_COUNT
        case 36: *value = 2619000; break;                     // MEMORY_CLOCK_RATE (kHz)
        case 37: *value = 5120; break;                        // GLOBAL_MEMORY_BUS_WIDTH
        case 38: *value = 50 << 20; break;                    // L2_CACHE_SIZE
        case 39: *value = 2048; break;                        // MAX_THREADS_PER_MULTIPROCESSOR
        case 40: *value = 3; break;                           // ASYNC_ENGINE_COUNT
        case 41: *value = 1; break;                           // UNIFIED_ADDRESSING
        case 75: *value = 9; break;                           // COMPUTE_CAPABILITY_MAJOR
        case 76: *value = 0; break;                           // COMPUTE_CAPABILITY_MINOR
        case 81: *value = 228 * 1024; break;                  // MAX_SHARED_MEMORY_PER_MULTIPROCESSOR
        case 82: *value = 65536; break;                       // MAX_REGISTERS_PER_MULTIPROCESSOR
        case 97: *value = kOptInSharedPerBlock; break;        // MAX_SHARED_MEMORY_PER_BLOCK_OPTIN
        case 106: *value = 32; break;                         // MAX_BLOCKS_PER_MULTIPROCESSOR
        default: *value = 0;
    }
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDevicePrimaryCtxRetain(CUcontext* ctx, CUdevice device) {
    GUARD_INIT();
    if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
    if (!ctx) return CUDA_ERROR_INVALID_VALUE;
    std::lock_guard<std::mutex> l(global_lock);
    if (!primary) primary = new Context();
    primary->refs++;
    *ctx = (CUcontext) primary;
    return CUDA_SUCCESS;
}

namespace {
// Frees what a context still holds and forgets it (its streams finish their work first).
void destroy_context(Context* c) {
    std::vector<Stream*> streams(c->streams.begin(), c->streams.end());
    if (c->nullStream) streams.push_back(c->nullStream);
    for (Stream* s : streams) {
        s->stop();
        delete s;
    }
    for (auto& [p, bytes] : c->device) std::free((void*) p);
    for (auto& [p, bytes] : c->pinned) munmap((void*) p, bytes);
    delete c;
}
}  // namespace

// The primary context is destroyed when its last retain is released: a faulted one is then gone, and the next
// retain makes a fresh one (what a process does after a device fault, short of exiting).
EXPORT CUresult cuDevicePrimaryCtxRelease_v2(CUdevice device) {
    GUARD_INIT();
    if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
    Context* dead = nullptr;
    {
        std::lock_guard<std::mutex> l(global_lock);
        if (!primary || primary->refs <= 0) return CUDA_ERROR_INVALID_CONTEXT;
        if (--primary->refs == 0) {
            dead = primary;
            primary = nullptr;
        }
    }
    if (dead) {
        if (current == dead) current = nullptr;
        destroy_context(dead);
    }
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDevicePrimaryCtxReset_v2(CUdevice device) {
    GUARD_INIT();
    if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
    Context* dead;
    {
        std::lock_guard<std::mutex> l(global_lock);
        dead = primary;
        primary = nullptr;
    }
    if (dead) {
        if (current == dead) current = nullptr;
        destroy_context(dead);
    }
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxSetCurrent(CUcontext ctx) {
    GUARD_INIT();
    current = (Context*) ctx;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxGetCurrent(CUcontext* ctx) {
    GUARD_INIT();
    if (!ctx) return CUDA_ERROR_INVALID_VALUE;
    *ctx = (CUcontext) current;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxGetDevice(CUdevice* device) {
    NEED_CONTEXT(c);
    (void) c;
    *device = 0;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxSynchronize() {
    NEED_CONTEXT(c);
    if (CUresult r = unsafe_during_capture("cuCtxSynchronize")) return r;
    std::vector<Stream*> streams;
    {
        std::lock_guard<std::mutex> l(c->lock);
        streams.assign(c->streams.begin(), c->streams.end());
        if (c->nullStream) streams.push_back(c->nullStream);
    }
    for (Stream* s : streams) s->drain();
    return (CUresult) c->sticky.load();
}

EXPORT CUresult cuMemGetInfo_v2(size_t* free, size_t* total) {
    NEED_CONTEXT(c);
    if (!free || !total) return CUDA_ERROR_INVALID_VALUE;
    std::lock_guard<std::mutex> l(c->lock);
    *total = total_memory();
    *free = total_memory() - std::min(total_memory(), c->allocated);
    return CUDA_SUCCESS;
}

// ----- memory -----

EXPORT CUresult cuMemAlloc_v2(CUdeviceptr* dptr, size_t bytes) {
    NEED_CONTEXT(c);
    if (!dptr || bytes == 0) return CUDA_ERROR_INVALID_VALUE;
    if (CUresult r = unsafe_during_capture("cuMemAlloc")) return r;
    size_t rounded = (bytes + 255) & ~(size_t) 255;
    {
        std::lock_guard<std::mutex> l(c->lock);
        if (c->allocated + rounded > total_memory()) return CUDA_ERROR_OUT_OF_MEMORY;
    }
    void* p = nullptr;
    if (posix_memalign(&p, 256, rounded) != 0) return CUDA_ERROR_OUT_OF_MEMORY;
    fill_garbage(p, rounded);
    std::lock_guard<std::mutex> l(c->lock);
    c->device[(uintptr_t) p] = bytes;
    c->allocated += rounded;
    *dptr = (CUdeviceptr) (uintptr_t) p;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemFree_v2(CUdeviceptr dptr) {
    if (!initialized) return CUDA_ERROR_NOT_INITIALIZED;
    if (!current) return CUDA_ERROR_INVALID_CONTEXT;
    Context* c = current;
    if (CUresult r = unsafe_during_capture("cuMemFree")) return r;
    if (dptr == 0) return CUDA_SUCCESS;
    {
        std::lock_guard<std::mutex> l(c->lock);
        auto it = c->device.find((uintptr_t) dptr);
        if (it == c->device.end()) {
            say("cuMemFree of an address that is not the start of a device allocation");
            return CUDA_ERROR_INVALID_VALUE;
        }
        c->allocated -= (it->second + 255) & ~(size_t) 255;
        c->device.erase(it);
    }
    // A real driver frees once the device is idle: here, once every stream has finished what it was given.
    std::vector<Stream*> streams;
    {
        std::lock_guard<std::mutex> l(c->lock);
        streams.assign(c->streams.begin(), c->streams.end());
    }
    for (Stream* s : streams) s->drain();
    std::free((void*) (uintptr_t) dptr);
    return (CUresult) c->sticky.load();
}

EXPORT CUresult cuMemAllocHost_v2(void** pp, size_t bytes) {
    NEED_CONTEXT(c);
    if (!pp || bytes == 0) return CUDA_ERROR_INVALID_VALUE;
    if (CUresult r = unsafe_during_capture("cuMemAllocHost")) return r;
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return CUDA_ERROR_OUT_OF_MEMORY;
    std::lock_guard<std::mutex> l(c->lock);
    c->pinned[(uintptr_t) p] = bytes;
    *pp = p;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemFreeHost(void* p) {
    if (!initialized) return CUDA_ERROR_NOT_INITIALIZED;
    if (!current) return CUDA_ERROR_INVALID_CONTEXT;
    Context* c = current;
    if (CUresult r = unsafe_during_capture("cuMemFreeHost")) return r;
    size_t bytes;
    {
        std::lock_guard<std::mutex> l(c->lock);
        auto it = c->pinned.find((uintptr_t) p);
        if (it == c->pinned.end()) return CUDA_ERROR_INVALID_VALUE;
        bytes = it->second;
        c->pinned.erase(it);
    }
    munmap(p, bytes);
    return (CUresult) c->sticky.load();
}

EXPORT CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void* src, size_t bytes, CUstream hs) {
    NEED_CONTEXT(c);
    Stream* s = stream_of(c, hs);
    if (CUresult r = check_copy(c, s, "cuMemcpyHtoDAsync", (uintptr_t) dst, true, (uintptr_t) src, false, bytes)) return r;
    enqueue(s, [=] { std::memcpy((void*) (uintptr_t) dst, src, bytes); });
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemcpyDtoHAsync_v2(void* dst, CUdeviceptr src, size_t bytes, CUstream hs) {
    NEED_CONTEXT(c);
    Stream* s = stream_of(c, hs);
    if (CUresult r = check_copy(c, s, "cuMemcpyDtoHAsync", (uintptr_t) dst, false, (uintptr_t) src, true, bytes)) return r;
    enqueue(s, [=] { std::memcpy(dst, (const void*) (uintptr_t) src, bytes); });
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream hs) {
    NEED_CONTEXT(c);
    Stream* s = stream_of(c, hs);
    if (CUresult r = check_copy(c, s, "cuMemcpyDtoDAsync", (uintptr_t) dst, true, (uintptr_t) src, true, bytes)) return r;
    enqueue(s, [=] { std::memmove((void*) (uintptr_t) dst, (const void*) (uintptr_t) src, bytes); });
    return CUDA_SUCCESS;
}

namespace {
// The synchronous copies: the legacy default stream's order is not modelled (Tandem's streams are non-blocking).
CUresult copy_now(const char* call, uintptr_t dst, bool dstDevice, uintptr_t src, bool srcDevice, size_t bytes) {
    NEED_CONTEXT(c);
    if (CUresult r = unsafe_during_capture(call)) return r;
    if (dstDevice && !in_device(c, dst, bytes)) return bad_copy(std::string(call) + ": destination is not in one device allocation");
    if (srcDevice && !in_device(c, src, bytes)) return bad_copy(std::string(call) + ": source is not in one device allocation");
    std::memmove((void*) dst, (const void*) src, bytes);
    return CUDA_SUCCESS;
}
}  // namespace

EXPORT CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void* src, size_t bytes) {
    return copy_now("cuMemcpyHtoD", (uintptr_t) dst, true, (uintptr_t) src, false, bytes);
}

EXPORT CUresult cuMemcpyDtoH_v2(void* dst, CUdeviceptr src, size_t bytes) {
    return copy_now("cuMemcpyDtoH", (uintptr_t) dst, false, (uintptr_t) src, true, bytes);
}

EXPORT CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t bytes) {
    return copy_now("cuMemcpyDtoD", (uintptr_t) dst, true, (uintptr_t) src, true, bytes);
}

EXPORT CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char value, size_t n, CUstream hs) {
    NEED_CONTEXT(c);
    if (!in_device(c, (uintptr_t) dst, n)) return bad_copy("cuMemsetD8Async: not in one device allocation");
    enqueue(stream_of(c, hs), [=] { std::memset((void*) (uintptr_t) dst, value, n); });
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemsetD32Async(CUdeviceptr dst, unsigned value, size_t n, CUstream hs) {
    NEED_CONTEXT(c);
    if ((dst & 3) != 0) return bad_copy("cuMemsetD32Async: destination not 4-byte aligned");
    if (!in_device(c, (uintptr_t) dst, n * 4)) return bad_copy("cuMemsetD32Async: not in one device allocation");
    enqueue(stream_of(c, hs), [=] {
        unsigned* p = (unsigned*) (uintptr_t) dst;
        for (size_t i = 0; i < n; ++i) p[i] = value;
    });
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemsetD8_v2(CUdeviceptr dst, unsigned char value, size_t n) {
    NEED_CONTEXT(c);
    if (CUresult r = unsafe_during_capture("cuMemsetD8")) return r;
    if (!in_device(c, (uintptr_t) dst, n)) return bad_copy("cuMemsetD8: not in one device allocation");
    std::memset((void*) (uintptr_t) dst, value, n);
    return CUDA_SUCCESS;
}

// ----- streams -----

EXPORT CUresult cuStreamCreate(CUstream* out, unsigned flags) {
    NEED_CONTEXT(c);
    if (!out || flags > 1) return CUDA_ERROR_INVALID_VALUE;
    Stream* s = new Stream(c);
    std::lock_guard<std::mutex> l(c->lock);
    c->streams.insert(s);
    *out = (CUstream) s;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuStreamDestroy_v2(CUstream hs) {
    if (!initialized) return CUDA_ERROR_NOT_INITIALIZED;
    if (!current) return CUDA_ERROR_INVALID_CONTEXT;
    Context* c = current;
    Stream* s = (Stream*) hs;
    if (!s) return CUDA_ERROR_INVALID_HANDLE;
    if (capturing(s)) {
        say("cuStreamDestroy of a capturing stream");
        return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    }
    {
        std::lock_guard<std::mutex> l(c->lock);
        if (!c->streams.erase(s)) return CUDA_ERROR_INVALID_HANDLE;
    }
    s->stop();   // its work finishes first, as on a GPU
    delete s;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuStreamSynchronize(CUstream hs) {
    NEED_CONTEXT(c);
    Stream* s = stream_of(c, hs);
    if (capturing(s)) {
        invalidate(s, CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "cuStreamSynchronize of a capturing stream");
        return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    }
    if (CUresult r = unsafe_during_capture("cuStreamSynchronize")) return r;
    s->drain();
    return (CUresult) c->sticky.load();
}

EXPORT CUresult cuStreamQuery(CUstream hs) {
    NEED_CONTEXT(c);
    Stream* s = stream_of(c, hs);
    if (capturing(s)) {
        invalidate(s, CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "cuStreamQuery of a capturing stream");
        return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    }
    return s->idle() ? (CUresult) c->sticky.load() : CUDA_ERROR_NOT_READY;
}

// Not called when the context has faulted (documented for cuLaunchHostFunc): what waits on it must not wait
// for it alone.
EXPORT CUresult cuLaunchHostFunc(CUstream hs, void (*fn)(void*), void* data) {
    NEED_CONTEXT(c);
    if (!fn) return CUDA_ERROR_INVALID_VALUE;
    enqueue(stream_of(c, hs), [=] {
        in_host_function = true;
        fn(data);
        in_host_function = false;
    });
    return CUDA_SUCCESS;
}

// Called in every case, with the context's error when it has faulted; not allowed during capture.
EXPORT CUresult cuStreamAddCallback(CUstream hs, void (*cb)(CUstream, CUresult, void*), void* data, unsigned flags) {
    NEED_CONTEXT(c);
    if (!cb || flags != 0) return CUDA_ERROR_INVALID_VALUE;
    Stream* s = stream_of(c, hs);
    if (capturing(s)) {
        invalidate(s, CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "cuStreamAddCallback on a capturing stream");
        return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    }
    s->push([=] {
        in_host_function = true;
        cb(hs, (CUresult) c->sticky.load(), data);
        in_host_function = false;
    });
    return CUDA_SUCCESS;
}

EXPORT CUresult cuStreamBeginCapture_v2(CUstream hs, int mode) {
    NEED_CONTEXT(c);
    if (!hs) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;   // the legacy stream cannot be captured
    if (mode < 0 || mode > 2) return CUDA_ERROR_INVALID_VALUE;
    Stream* s = (Stream*) hs;
    std::lock_guard<std::mutex> l(capture_lock);
    if (s->capture) return CUDA_ERROR_ILLEGAL_STATE;
    Capture* cap = new Capture{s, mode, std::this_thread::get_id(), {}, CUDA_SUCCESS};
    s->capture = cap;
    captures.insert(cap);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuStreamEndCapture(CUstream hs, CUgraph* graph) {
    NEED_CONTEXT(c);
    if (!hs || !graph) return CUDA_ERROR_INVALID_VALUE;
    Stream* s = (Stream*) hs;
    std::lock_guard<std::mutex> l(capture_lock);
    Capture* cap = s->capture;
    if (!cap) return CUDA_ERROR_ILLEGAL_STATE;
    if (cap->mode != CU_STREAM_CAPTURE_MODE_RELAXED && cap->thread != std::this_thread::get_id()) {
        return CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD;
    }
    s->capture = nullptr;
    captures.erase(cap);
    CUresult why = cap->invalidated;
    if (why) {
        delete cap;
        *graph = nullptr;
        return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    }
    *graph = (CUgraph) new Graph{std::move(cap->nodes)};
    live_graphs++;
    delete cap;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuStreamIsCapturing(CUstream hs, int* status) {
    NEED_CONTEXT(c);
    if (!status) return CUDA_ERROR_INVALID_VALUE;
    Stream* s = stream_of(c, hs);
    std::lock_guard<std::mutex> l(capture_lock);
    *status = !s->capture ? CU_STREAM_CAPTURE_STATUS_NONE
            : s->capture->invalidated ? CU_STREAM_CAPTURE_STATUS_INVALIDATED : CU_STREAM_CAPTURE_STATUS_ACTIVE;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuThreadExchangeStreamCaptureMode(int* mode) {
    if (!mode) return CUDA_ERROR_INVALID_VALUE;
    return CUDA_SUCCESS;
}

// ----- events -----

EXPORT CUresult cuEventCreate(CUevent* out, unsigned flags) {
    NEED_CONTEXT(c);
    if (!out) return CUDA_ERROR_INVALID_VALUE;
    Event* e = new Event();
    e->ctx = c;
    e->flags = flags;
    *out = (CUevent) e;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuEventDestroy_v2(CUevent he) {
    if (!initialized) return CUDA_ERROR_NOT_INITIALIZED;
    if (!he) return CUDA_ERROR_INVALID_HANDLE;
    // Work recorded on it may still reference it: the emulation keeps its few bytes (a real driver defers too).
    return CUDA_SUCCESS;
}

EXPORT CUresult cuEventRecord(CUevent he, CUstream hs) {
    NEED_CONTEXT(c);
    Event* e = (Event*) he;
    if (!e) return CUDA_ERROR_INVALID_HANDLE;
    Stream* s = stream_of(c, hs);
    uint64_t n;
    {
        std::lock_guard<std::mutex> l(e->lock);
        n = ++e->recorded;
        std::lock_guard<std::mutex> cl(capture_lock);
        e->capturedBy = s->capture;
    }
    Task mark = [e, n] {
        std::lock_guard<std::mutex> l(e->lock);
        e->when = std::chrono::steady_clock::now();
        e->completed = std::max(e->completed, n);
        e->reached.notify_all();
    };
    if (capturing(s)) {
        // Inside a graph an event record is a node; replays mark it again.
        enqueue(s, mark);
    } else {
        s->push(mark);   // also after a fault (waiters also stop at the fault itself)
    }
    return CUDA_SUCCESS;
}

EXPORT CUresult cuEventQuery(CUevent he) {
    NEED_CONTEXT(c);
    Event* e = (Event*) he;
    if (!e) return CUDA_ERROR_INVALID_HANDLE;
    std::lock_guard<std::mutex> l(e->lock);
    if (e->capturedBy) {
        say("cuEventQuery of an event recorded in a capture");
        return CUDA_ERROR_CAPTURED_EVENT;
    }
    return e->completed >= e->recorded ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}

EXPORT CUresult cuEventSynchronize(CUevent he) {
    NEED_CONTEXT(c);
    Event* e = (Event*) he;
    if (!e) return CUDA_ERROR_INVALID_HANDLE;
    if (CUresult r = unsafe_during_capture("cuEventSynchronize")) return r;
    std::unique_lock<std::mutex> l(e->lock);
    if (e->capturedBy) return CUDA_ERROR_CAPTURED_EVENT;
    uint64_t n = e->recorded;
    while (e->completed < n && !c->sticky.load()) e->reached.wait_for(l, std::chrono::milliseconds(20));
    return (CUresult) c->sticky.load();
}

EXPORT CUresult cuEventElapsedTime(float* ms, CUevent hstart, CUevent hend) {
    NEED_CONTEXT(c);
    Event* a = (Event*) hstart;
    Event* b = (Event*) hend;
    if (!ms || !a || !b) return CUDA_ERROR_INVALID_VALUE;
    if ((a->flags | b->flags) & 2) return CUDA_ERROR_INVALID_HANDLE;   // CU_EVENT_DISABLE_TIMING
    std::lock_guard<std::mutex> la(a->lock);
    std::unique_lock<std::mutex> lb(b->lock, std::defer_lock);
    if (a != b) lb.lock();
    if (a->recorded == 0 || b->recorded == 0) return CUDA_ERROR_INVALID_HANDLE;
    if (a->completed < a->recorded || b->completed < b->recorded) return CUDA_ERROR_NOT_READY;
    *ms = std::chrono::duration<float, std::milli>(b->when - a->when).count();
    return CUDA_SUCCESS;
}

// Work enqueued on `hs` after this waits for the event's latest record. During a capture the event must have
// been recorded in the same capture: a capture cannot depend on work outside its graph.
EXPORT CUresult cuStreamWaitEvent(CUstream hs, CUevent he, unsigned flags) {
    NEED_CONTEXT(c);
    Event* e = (Event*) he;
    if (!e) return CUDA_ERROR_INVALID_HANDLE;
    Stream* s = stream_of(c, hs);
    uint64_t n;
    Capture* recordedIn;
    {
        std::lock_guard<std::mutex> l(e->lock);
        n = e->recorded;
        recordedIn = e->capturedBy;
    }
    Capture* cap;
    {
        std::lock_guard<std::mutex> l(capture_lock);
        cap = s->capture;
    }
    if (cap) {
        if (recordedIn != cap) {
            invalidate(s, CUDA_ERROR_STREAM_CAPTURE_ISOLATION, "cuStreamWaitEvent in a capture on an event recorded outside it");
            return CUDA_ERROR_STREAM_CAPTURE_ISOLATION;
        }
        return CUDA_SUCCESS;   // recorded earlier in the same single-stream capture: already ordered
    }
    if (n == 0) return CUDA_SUCCESS;
    s->push([e, n, c] {
        std::unique_lock<std::mutex> l(e->lock);
        while (e->completed < n && !c->sticky.load()) e->reached.wait_for(l, std::chrono::milliseconds(20));
    });
    return CUDA_SUCCESS;
}

// ----- modules and launches -----

EXPORT CUresult cuModuleLoadData(CUmodule* out, const void* image) {
    NEED_CONTEXT(c);
    (void) c;
    if (!out || !image) return CUDA_ERROR_INVALID_VALUE;
    std::string why;
    std::map<std::string, int> maxThreads;
    if (CUresult r = check_image(image, why, maxThreads)) {
        say("cuModuleLoadData: " + why);
        return r;
    }
    if (maxThreads.empty()) say("the fatbin's launch bounds cannot be read (no libzstd.so.1?): only the device's thread limit is checked");
    void* lib = open_host_kernels();
    if (!lib) return CUDA_ERROR_INVALID_IMAGE;
    *out = (CUmodule) new Module{lib, std::move(maxThreads)};
    return CUDA_SUCCESS;
}

EXPORT CUresult cuModuleUnload(CUmodule m) {
    if (!m) return CUDA_ERROR_INVALID_HANDLE;
    return CUDA_SUCCESS;   // the host library stays loaded: functions may still be referenced by graphs
}

EXPORT CUresult cuModuleGetFunction(CUfunction* out, CUmodule hm, const char* name) {
    NEED_CONTEXT(c);
    (void) c;
    Module* m = (Module*) hm;
    if (!out || !m || !name) return CUDA_ERROR_INVALID_VALUE;
    auto params = (int (*)(void* const*, uint64_t*, int)) dlsym(m->library, ("tandem_params_" + std::string(name)).c_str());
    auto bound = (int (*)(unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, const uint64_t*))
            dlsym(m->library, ("tandem_bound_" + std::string(name)).c_str());
    if (!params || !bound) {
        say(std::string("cuModuleGetFunction: no kernel named ") + name);
        return CUDA_ERROR_NOT_FOUND;
    }
    auto bounds = m->maxThreads.find(name);
    *out = (CUfunction) new Function{name, params, bound, kDefaultSharedPerBlock, bounds == m->maxThreads.end() ? kMaxThreadsPerBlock : bounds->second};
    return CUDA_SUCCESS;
}

EXPORT CUresult cuFuncGetAttribute(int* value, int attribute, CUfunction hf) {
    NEED_CONTEXT(c);
    (void) c;
    Function* f = (Function*) hf;
    if (!value || !f) return CUDA_ERROR_INVALID_VALUE;
    switch (attribute) {
        case 0: *value = f->maxThreads; break;         // MAX_THREADS_PER_BLOCK
        case 4: *value = 32; break;                    // NUM_REGS
        case 5: case 6: *value = 90; break;            // PTX_VERSION, BINARY_VERSION
        case 8: *value = f->maxDynamicShared; break;   // MAX_DYNAMIC_SHARED_SIZE_BYTES
        default: *value = 0;
    }
    return CUDA_SUCCESS;
}

EXPORT CUresult cuFuncSetAttribute(CUfunction hf, int attribute, int value) {
    NEED_CONTEXT(c);
    (void) c;
    Function* f = (Function*) hf;
    if (!f) return CUDA_ERROR_INVALID_HANDLE;
    if (attribute == 8) {   // MAX_DYNAMIC_SHARED_SIZE_BYTES: the opt-in above 48 KiB
        if (value < 0 || value > kOptInSharedPerBlock) return CUDA_ERROR_INVALID_VALUE;
        f->maxDynamicShared = value;
        return CUDA_SUCCESS;
    }
    return CUDA_SUCCESS;
}

EXPORT CUresult cuLaunchKernel(CUfunction hf, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                               unsigned shared, CUstream hs, void** params, void** extra) {
    NEED_CONTEXT(c);
    Function* f = (Function*) hf;
    if (!f) return CUDA_ERROR_INVALID_HANDLE;
    if (extra) {
        say("cuLaunchKernel: `extra` argument packing is not emulated");
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    unsigned long threads = (unsigned long) bx * by * bz;
    if (gx == 0 || gy == 0 || gz == 0 || gy > 65535 || gz > 65535 || gx > 2147483647u || threads == 0 || bx > 1024 || by > 1024 || bz > 64) {
        say(f->name + ": grid (" + std::to_string(gx) + "," + std::to_string(gy) + "," + std::to_string(gz) + ") block (" + std::to_string(bx) + ","
            + std::to_string(by) + "," + std::to_string(bz) + ") is outside the device's limits");
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (threads > (unsigned long) f->maxThreads) {
        say(f->name + ": " + std::to_string(threads) + " threads a block, more than its __launch_bounds__ of " + std::to_string(f->maxThreads));
        return CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES;
    }
    if ((int) shared > f->maxDynamicShared) {
        say(f->name + ": " + std::to_string(shared) + " bytes of dynamic shared memory, more than " + std::to_string(f->maxDynamicShared)
            + (f->maxDynamicShared == kDefaultSharedPerBlock ? " (above 48 KiB needs cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES))" : ""));
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!params) return CUDA_ERROR_INVALID_VALUE;
    auto slots = std::make_shared<std::vector<uint64_t>>(kParamSlots);
    if (f->params(params, slots->data(), kParamSlots) < 0) return CUDA_ERROR_INVALID_VALUE;
    Stream* s = stream_of(c, hs);
    enqueue(s, [c, f, gx, gy, gz, bx, by, bz, shared, slots] {
        unsigned g[3] = {gx, gy, gz}, b[3] = {bx, by, bz};
        run_launch(c, f, g, b, shared, slots->data());
    });
    return CUDA_SUCCESS;
}

// ----- graphs -----

EXPORT CUresult cuGraphInstantiateWithFlags(CUgraphExec* out, CUgraph hg, unsigned long long flags) {
    NEED_CONTEXT(c);
    (void) c;
    Graph* g = (Graph*) hg;
    if (!out || !g) return CUDA_ERROR_INVALID_VALUE;
    if (flags != 0) return CUDA_ERROR_NOT_SUPPORTED;
    *out = (CUgraphExec) new GraphExec{g->nodes};
    return CUDA_SUCCESS;
}

EXPORT CUresult cuGraphLaunch(CUgraphExec he, CUstream hs) {
    NEED_CONTEXT(c);
    GraphExec* g = (GraphExec*) he;
    if (!g) return CUDA_ERROR_INVALID_HANDLE;
    Stream* s = stream_of(c, hs);
    if (capturing(s)) {
        invalidate(s, CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "cuGraphLaunch into a capture (child graphs are not emulated)");
        return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    }
    std::vector<Task>* nodes = &g->nodes;   // a graph exec outlives its launches (destroying it waits: see below)
    s->push([nodes] {
        for (Task& t : *nodes) t();
    });
    return CUDA_SUCCESS;
}

EXPORT CUresult cuGraphExecDestroy(CUgraphExec he) {
    if (!he) return CUDA_ERROR_INVALID_HANDLE;
    // Launches may still be queued: every stream of the current context finishes first.
    if (current) {
        std::vector<Stream*> streams;
        {
            std::lock_guard<std::mutex> l(current->lock);
            streams.assign(current->streams.begin(), current->streams.end());
        }
        for (Stream* s : streams) s->drain();
    }
    delete (GraphExec*) he;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuGraphDestroy(CUgraph hg) {
    if (!hg) return CUDA_ERROR_INVALID_HANDLE;
    delete (Graph*) hg;
    live_graphs--;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuGetErrorName(CUresult error, const char** name) {
    if (!name) return CUDA_ERROR_INVALID_VALUE;
    *name = error_name(error);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuGetErrorString(CUresult error, const char** text) {
    if (!text) return CUDA_ERROR_INVALID_VALUE;
    *text = error_name(error);
    return CUDA_SUCCESS;
}

// ----- the emulation's own entry points (tests, libcublas.so.12) -----

// Makes the Nth launch run from now (1 = the next) fault as an illegal address; 0 cancels.
EXPORT void tandem_emulated_inject_fault(long n) {
    fault_at = n > 0 ? launches_run.load() + n : -1;
}

// Launches run so far (kernel nodes of graphs included).
EXPORT long tandem_emulated_launches() { return launches_run.load(); }

// Graphs captured and not destroyed.
EXPORT long tandem_emulated_live_graphs() { return live_graphs.load(); }

// Enqueues host work on a stream in stream order (or into its capture): libcublas.so.12's gemmEx. Returns a
// CUresult; `work` returns non-zero to fault the context with `what`.
EXPORT CUresult tandem_emulated_enqueue(CUstream hs, int (*work)(void*), void* data, void (*release)(void*), const char* what) {
    NEED_CONTEXT(c);
    Stream* s = stream_of(c, hs);
    std::string name = what ? what : "host work";
    auto owned = std::shared_ptr<void>(data, release ? release : [](void*) {});
    enqueue(s, [c, work, owned, name] {
        if (work(owned.get()) != 0) fault(c, CUDA_ERROR_LAUNCH_FAILED, name);
    });
    return CUDA_SUCCESS;
}

// A symbol of the host-emulation kernels library (libcublas.so.12 takes tandem_host_gemm_ex from there).
EXPORT void* tandem_emulated_host_symbol(const char* name) {
    void* lib = open_host_kernels();
    return lib ? dlsym(lib, name) : nullptr;
}

}  // extern "C"
