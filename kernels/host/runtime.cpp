// The host-emulation scheduler: fibers (ucontext) for the threads of a block, a few OS threads for the grid.
#include "cuda_host.h"

#include <sys/mman.h>
#include <ucontext.h>

// AddressSanitizer builds (native-build/build-sanitizers.sh): every fiber switch is announced, so ASan knows which
// stack is live and reports an overrun on a fiber's stack or a kernel's buffers as it would on the thread's own.
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define TANDEM_ASAN 1
#endif

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

// Fiber switching. On x86-64 a ten-instruction stack switch (callee-saved registers, MXCSR and the x87 control
// word); elsewhere, or with -DTANDEM_HOST_UCONTEXT, ucontext's swapcontext, which also saves the signal mask
// through a system call on every switch and is many times slower.
#if defined(__x86_64__) && !defined(TANDEM_HOST_UCONTEXT)
#define TANDEM_FAST_SWITCH 1
extern "C" void tandem_switch_stack(void** save, void* load);
asm(R"(
    .text
    .globl tandem_switch_stack
    .hidden tandem_switch_stack
    .type tandem_switch_stack, @function
tandem_switch_stack:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size tandem_switch_stack, .-tandem_switch_stack
    .section .note.GNU-stack,"",@progbits
    .text
)");
#endif

namespace tandem_host {

namespace {

constexpr int kWarp = 32;
constexpr unsigned kMaxThreads = 1024;
constexpr unsigned kMaxSharedBytes = 227 * 1024;  // the largest opt-in dynamic shared memory of sm_90

enum class State { Runnable, AtBlockBarrier, AtWarpBarrier, Done };

size_t stack_bytes() {
    static const size_t bytes = [] {
        const char* env = std::getenv("TANDEM_HOST_STACK_KB");
        long kb = env ? std::atol(env) : 128;
        return (size_t) std::max(32L, kb) * 1024;
    }();
    return bytes;
}

// A fiber stack with a guard page below it, so an overflow faults instead of corrupting a neighbour.
struct Stack {
    void* base = nullptr;
    size_t bytes = 0;
    Stack() = default;
    Stack(const Stack&) = delete;
    Stack(Stack&& o) noexcept : base(o.base), bytes(o.bytes) { o.base = nullptr; }
    explicit Stack(size_t usable) : bytes(usable + 4096) {
        base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (base == MAP_FAILED) {
            base = nullptr;
            return;
        }
        mprotect(base, 4096, PROT_NONE);
    }
    ~Stack() {
        if (base) munmap(base, bytes);
    }
};

// The order in which a block's threads run between barriers, and a grid's blocks run. CUDA promises neither, so a
// kernel whose results depend on it has a race (a missing __syncthreads(), a warp-synchronous assumption, a block
// reading another's output). Forward is the default; the race check reruns launches reversed and shuffled.
struct ThreadOrder {
    enum Kind { Forward, Reversed, Shuffled } kind = Forward;
    uint64_t seed = 0;  // Shuffled: the permutations are a function of the seed and the block, so a failure reproduces
};

// splitmix64: a fixed, portable mix, so a seed names the same permutations everywhere.
uint64_t mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// Fisher-Yates over 0..n-1 (std::shuffle's draws differ between standard libraries).
template <class T> void permutation(std::vector<T>& v, size_t n, uint64_t seed) {
    v.resize(n);
    for (size_t i = 0; i < n; ++i) v[i] = (T) i;
    for (size_t i = n; i > 1; --i) {
        seed = mix(seed);
        std::swap(v[i - 1], v[seed % i]);
    }
}

// "forward", "reversed" or "shuffled:<seed>"; false for anything else.
bool parse_order(const char* spec, ThreadOrder& out) {
    if (spec == nullptr) return false;
    if (std::strcmp(spec, "forward") == 0) {
        out = ThreadOrder{ThreadOrder::Forward, 0};
        return true;
    }
    if (std::strcmp(spec, "reversed") == 0) {
        out = ThreadOrder{ThreadOrder::Reversed, 0};
        return true;
    }
    const char* prefix = "shuffled:";
    if (std::strncmp(spec, prefix, std::strlen(prefix)) == 0 && spec[std::strlen(prefix)] != '\0') {
        char* end = nullptr;
        unsigned long long seed = std::strtoull(spec + std::strlen(prefix), &end, 10);
        if (*end != '\0') return false;
        out = ThreadOrder{ThreadOrder::Shuffled, seed};
        return true;
    }
    return false;
}

}  // namespace

struct Fiber {
#ifdef TANDEM_FAST_SWITCH
    void* sp;
#else
    ucontext_t context;
#endif
    uint3 index;
    int warp;
    int lane;
    State state;
    unsigned collectives;  // warp collectives passed; its parity picks the exchange buffer
#ifdef TANDEM_ASAN
    const void* stackBottom;
    size_t stackBytes;
    void* fakeStack;  // ASan's fake stack of this fiber while it is switched out
#endif
};

struct Block {
    uint3 index;
    dim3 dim;
    dim3 grid;
    unsigned char* shared;
    const std::function<void()>* kernel;
#ifdef TANDEM_FAST_SWITCH
    void* scheduler;
#else
    ucontext_t scheduler;
#endif
    std::vector<Fiber> fibers;
    int live;
    int blockArrived;
    std::vector<int> warpLive;
    std::vector<int> warpArrived;
    // Two exchange buffers per warp: a lane that has left collective n may already write collective n+1
    // while slower lanes still read n, but no lane can reach n+2 before every lane has passed n+1.
    std::vector<uint64_t> exchange;  // [warp][2][32]
    // The order in which the scheduler resumes runnable threads (the race check reorders it, see ThreadOrder).
    std::vector<int> order;
#ifdef TANDEM_ASAN
    const void* schedulerBottom;  // the OS thread's stack, learnt when a fiber is first entered
    size_t schedulerBytes;
    void* schedulerFakeStack;
#endif
};

thread_local Fiber* current_fiber __attribute__((tls_model("initial-exec"))) = nullptr;
thread_local Block* current_block __attribute__((tls_model("initial-exec"))) = nullptr;

const uint3& thread_index() { return current_fiber->index; }
const uint3& block_index() { return current_block->index; }
const dim3& block_dim() { return current_block->dim; }
const dim3& grid_dim() { return current_block->grid; }
unsigned char* dynamic_shared() { return current_block->shared; }
int lane_id() { return current_fiber->lane; }

namespace {

// ASan's fiber protocol: announce the stack about to run (null save slot when the leaving fiber is finished for good),
// then, on arrival, finish the switch and learn the stack that was left.
#ifdef TANDEM_ASAN
void arrive_on_fiber(Fiber* f) {
    Block& b = *current_block;
    __sanitizer_finish_switch_fiber(f->fakeStack, &b.schedulerBottom, &b.schedulerBytes);
}
void leave_fiber(Fiber* f) {
    Block& b = *current_block;
    __sanitizer_start_switch_fiber(f->state == State::Done ? nullptr : &f->fakeStack, b.schedulerBottom, b.schedulerBytes);
}
void leave_scheduler(Block& b, Fiber& f) { __sanitizer_start_switch_fiber(&b.schedulerFakeStack, f.stackBottom, f.stackBytes); }
void arrive_on_scheduler(Block& b) { __sanitizer_finish_switch_fiber(b.schedulerFakeStack, nullptr, nullptr); }
void forget_stack(char* base, size_t bytes) { ASAN_UNPOISON_MEMORY_REGION(base, bytes); }
#else
void arrive_on_fiber(Fiber*) {}
void leave_fiber(Fiber*) {}
void leave_scheduler(Block&, Fiber&) {}
void arrive_on_scheduler(Block&) {}
void forget_stack(char*, size_t) {}
#endif

#ifdef TANDEM_FAST_SWITCH
void yield_to_scheduler(Fiber* f) {
    leave_fiber(f);
    tandem_switch_stack(&f->sp, current_block->scheduler);
    arrive_on_fiber(f);
}
void resume(Block& b, Fiber& f) {
    leave_scheduler(b, f);
    tandem_switch_stack(&b.scheduler, f.sp);
    arrive_on_scheduler(b);
}

[[noreturn]] void fiber_main() {
    Fiber* f = current_fiber;
    arrive_on_fiber(f);
    (*current_block->kernel)();
    f->state = State::Done;
    yield_to_scheduler(f);  // never resumed
    __builtin_unreachable();
}

// Lays out a fresh stack as tandem_switch_stack leaves a suspended one, "returning" into fiber_main with the
// stack aligned as right after a call.
void start(Block&, Fiber& f, char* base, size_t bytes) {
    forget_stack(base, bytes);  // a reused stack may still carry the poisoned frames of its last fiber
    uintptr_t top = ((uintptr_t) (base + bytes)) & ~(uintptr_t) 15;
    void** p = (void**) top;
    *--p = nullptr;                        // fiber_main's return address: it never returns
    *--p = (void*) &fiber_main;            // popped by ret
    for (int i = 0; i < 6; ++i) *--p = nullptr;  // rbp rbx r12 r13 r14 r15
    uint32_t control[2];
    __asm__ volatile("stmxcsr %0" : "=m"(control[0]));
    __asm__ volatile("fnstcw %0" : "=m"(control[1]));
    --p;
    std::memcpy(p, control, 8);
    f.sp = p;
}
#else
void yield_to_scheduler(Fiber* f) {
    leave_fiber(f);
    swapcontext(&f->context, &current_block->scheduler);
    arrive_on_fiber(f);
}
void resume(Block& b, Fiber& f) {
    leave_scheduler(b, f);
    swapcontext(&b.scheduler, &f.context);
    arrive_on_scheduler(b);
}

void fiber_main() {
    Fiber* f = current_fiber;
    arrive_on_fiber(f);
    (*current_block->kernel)();
    f->state = State::Done;
    leave_fiber(f);
    // returning resumes uc_link, the scheduler
}

void start(Block& b, Fiber& f, char* base, size_t bytes) {
    forget_stack(base, bytes);
    getcontext(&f.context);  // per fiber: the context holds a pointer into itself (FP state)
    f.context.uc_stack.ss_sp = base;
    f.context.uc_stack.ss_size = bytes;
    f.context.uc_link = &b.scheduler;
    makecontext(&f.context, fiber_main, 0);
}
#endif

// Releases barriers whose participants have all arrived; threads that exited count as arrived, as on sm_70+.
void release_barriers(Block& b, int warp) {
    if (b.blockArrived > 0 && b.blockArrived == b.live) {
        b.blockArrived = 0;
        for (Fiber& f : b.fibers) {
            if (f.state == State::AtBlockBarrier) f.state = State::Runnable;
        }
    }
    if (b.warpArrived[warp] > 0 && b.warpArrived[warp] == b.warpLive[warp]) {
        b.warpArrived[warp] = 0;
        size_t first = (size_t) warp * kWarp;
        size_t end = std::min(b.fibers.size(), first + kWarp);
        for (size_t i = first; i < end; ++i) {
            if (b.fibers[i].state == State::AtWarpBarrier) b.fibers[i].state = State::Runnable;
        }
    }
}

// Per OS thread: the fiber stacks, kept between blocks.
struct Worker {
    std::vector<Stack> stacks;
    std::vector<unsigned char> shared;
    Block block;

    // Runs one block to completion; returns an error message, or empty.
    std::string run(uint3 index, dim3 dim, dim3 grid, unsigned sharedBytes, const std::function<void()>& kernel,
                    const ThreadOrder& order) {
        unsigned n = dim.x * dim.y * dim.z;
        while (stacks.size() < n) {
            stacks.emplace_back(stack_bytes());
            if (!stacks.back().base) return "cannot map a fiber stack";
        }
#ifdef TANDEM_ASAN
        ASAN_UNPOISON_MEMORY_REGION(shared.data(), shared.size());
#endif
        if (shared.size() < sharedBytes + 16) shared.resize(sharedBytes + 16);
        Block& b = block;
        b.index = index;
        b.dim = dim;
        b.grid = grid;
        uintptr_t aligned = ((uintptr_t) shared.data() + 15) & ~(uintptr_t) 15;
        b.shared = (unsigned char*) aligned;
        // Shared memory starts as garbage on the device: all-ones bytes (NaN floats, -1 ints) make a read before any
        // write show, and keep the last block's or launch's values from hiding a race between the thread orders.
        std::memset(b.shared, 0xff, sharedBytes);
#ifdef TANDEM_ASAN
        // Past the launch's dynamic shared bytes is out of bounds, as on the device.
        ASAN_POISON_MEMORY_REGION(b.shared + sharedBytes, shared.data() + shared.size() - (b.shared + sharedBytes));
#endif
        b.kernel = &kernel;
        int warps = (int) ((n + kWarp - 1) / kWarp);
        b.fibers.assign(n, Fiber{});
        b.live = (int) n;
        b.blockArrived = 0;
        b.warpLive.assign(warps, 0);
        b.warpArrived.assign(warps, 0);
        b.exchange.assign((size_t) warps * 2 * kWarp, 0);

        for (unsigned t = 0; t < n; ++t) {
            Fiber& f = b.fibers[t];
            f.index = uint3{t % dim.x, (t / dim.x) % dim.y, t / (dim.x * dim.y)};
            f.warp = (int) (t / kWarp);
            f.lane = (int) (t % kWarp);
            f.state = State::Runnable;
            f.collectives = 0;
#ifdef TANDEM_ASAN
            f.stackBottom = (char*) stacks[t].base + 4096;
            f.stackBytes = stacks[t].bytes - 4096;
            f.fakeStack = nullptr;
#endif
            b.warpLive[f.warp]++;
            start(b, f, (char*) stacks[t].base + 4096, stacks[t].bytes - 4096);
        }

        uint64_t blockSeed = mix(order.seed ^ mix(((uint64_t) index.z * grid.y + index.y) * grid.x + index.x));
        if (order.kind != ThreadOrder::Shuffled) {
            permutation(b.order, n, 0);
            if (order.kind == ThreadOrder::Reversed) std::reverse(b.order.begin(), b.order.end());
        }
        current_block = &b;
        for (uint64_t round = 0; b.live > 0; ++round) {
            // Shuffled: a fresh order every round, so each stretch between barriers sees a different interleaving.
            if (order.kind == ThreadOrder::Shuffled) permutation(b.order, n, mix(blockSeed + round));
            bool ran = false;
            for (int t : b.order) {
                Fiber& f = b.fibers[t];
                if (f.state != State::Runnable) continue;
                ran = true;
                current_fiber = &f;
                resume(b, f);
                if (f.state == State::Done) {
                    b.live--;
                    b.warpLive[f.warp]--;
                }
                release_barriers(b, f.warp);
            }
            if (!ran) {
                current_fiber = nullptr;
                current_block = nullptr;
                return "deadlock: threads wait at different barriers (divergent __syncthreads or warp collective)";
            }
        }
        current_fiber = nullptr;
        current_block = nullptr;
        return {};
    }
};

// Workers outlive launches: mapping and first touching a block's fiber stacks costs far more than running most
// kernels, so a launch borrows workers from here and returns them. Launches from several streams at once each
// get their own.
std::mutex idle_mutex;
std::vector<Worker*> idle_workers;  // never freed: they live as long as the library (<memory> clashes with the
                                    // emulation's __noinline__ macro, hence plain pointers)

Worker* borrow_worker() {
    std::lock_guard<std::mutex> lock(idle_mutex);
    if (idle_workers.empty()) return new Worker();
    Worker* w = idle_workers.back();
    idle_workers.pop_back();
    return w;
}

void return_worker(Worker* w) {
    std::lock_guard<std::mutex> lock(idle_mutex);
    idle_workers.push_back(w);
}

int worker_count() {
    static const int count = [] {
        const char* env = std::getenv("TANDEM_HOST_THREADS");
        int n = env ? std::atoi(env) : (int) std::min(4u, std::max(1u, std::thread::hardware_concurrency()));
        return std::max(1, n);
    }();
    return count;
}

std::mutex error_mutex;
std::string last_error_message;

// The order launches use now: TANDEM_HOST_ORDER at first use, then whatever tandem_host_set_order last set.
std::mutex order_mutex;
ThreadOrder current_order;
bool order_read = false;
std::string order_error;  // a bad TANDEM_HOST_ORDER: every launch fails saying so, rather than test in forward order

ThreadOrder order_now(std::string& error) {
    std::lock_guard<std::mutex> lock(order_mutex);
    if (!order_read) {
        order_read = true;
        const char* env = std::getenv("TANDEM_HOST_ORDER");
        if (env != nullptr && *env != '\0' && !parse_order(env, current_order)) {
            order_error = std::string("TANDEM_HOST_ORDER=") + env + ": expected forward, reversed or shuffled:<seed>";
        }
    }
    error = order_error;
    return current_order;
}

int fail(int code, const std::string& message) {
    std::lock_guard<std::mutex> lock(error_mutex);
    last_error_message = message;
    return code;
}

}  // namespace

void block_barrier() {
    Fiber* f = current_fiber;
    Block& b = *current_block;
    f->state = State::AtBlockBarrier;
    b.blockArrived++;
    yield_to_scheduler(f);
}

uint64_t warp_exchange(uint64_t mine, int src) {
    Fiber* f = current_fiber;
    Block& b = *current_block;
    uint64_t* slots = &b.exchange[((size_t) f->warp * 2 + (f->collectives & 1)) * kWarp];
    f->collectives++;
    slots[f->lane] = mine;
    f->state = State::AtWarpBarrier;
    b.warpArrived[f->warp]++;
    yield_to_scheduler(f);
    int first = f->warp * kWarp;
    if (src < 0 || src >= kWarp || first + src >= (int) b.fibers.size()) return mine;
    return slots[src];
}

int launch(dim3 grid, dim3 block, unsigned sharedBytes, const std::function<void()>& kernel) {
    unsigned threads = block.x * block.y * block.z;
    if (threads == 0 || threads > kMaxThreads) {
        return fail(2, "block of " + std::to_string(threads) + " threads (1.." + std::to_string(kMaxThreads) + " allowed)");
    }
    if (sharedBytes > kMaxSharedBytes) {
        return fail(2, std::to_string(sharedBytes) + " bytes of dynamic shared memory (at most " + std::to_string(kMaxSharedBytes) + ")");
    }
    size_t blocks = (size_t) grid.x * grid.y * grid.z;
    if (blocks == 0) return 0;
    std::string orderError;
    const ThreadOrder order = order_now(orderError);
    if (!orderError.empty()) return fail(2, orderError);
    std::vector<size_t> shuffledBlocks;
    if (order.kind == ThreadOrder::Shuffled) permutation(shuffledBlocks, blocks, mix(order.seed));
    std::atomic<size_t> next{0};
    std::atomic<bool> failed{false};
    std::string error;
    std::mutex errorLock;
    auto work = [&] {
        Worker* worker = borrow_worker();
        for (size_t n; !failed.load() && (n = next.fetch_add(1)) < blocks;) {
            size_t i = order.kind == ThreadOrder::Forward ? n : order.kind == ThreadOrder::Reversed ? blocks - 1 - n : shuffledBlocks[n];
            uint3 index{(unsigned) (i % grid.x), (unsigned) ((i / grid.x) % grid.y), (unsigned) (i / ((size_t) grid.x * grid.y))};
            std::string e = worker->run(index, block, grid, sharedBytes, kernel, order);
            if (!e.empty()) {
                std::lock_guard<std::mutex> lock(errorLock);
                if (!failed.exchange(true)) error = e + " in block (" + std::to_string(index.x) + "," + std::to_string(index.y) + "," + std::to_string(index.z) + ")";
            }
        }
        return_worker(worker);
    };
    // Blocks always run on threads of our own, never on the caller's (a JVM thread).
    int n = (int) std::min<size_t>(blocks, (size_t) worker_count());
    std::vector<std::thread> pool;
    for (int i = 0; i < n; ++i) pool.emplace_back(work);
    for (std::thread& t : pool) t.join();
    if (failed.load()) return fail(1, error);
    return 0;
}

}  // namespace tandem_host

extern "C" __attribute__((visibility("default"))) const char* tandem_host_last_error() {
    std::lock_guard<std::mutex> lock(tandem_host::error_mutex);
    return tandem_host::last_error_message.c_str();
}

// Sets the thread and block order of later launches ("forward", "reversed", "shuffled:<seed>"): 0, or 2 with the
// message in tandem_host_last_error() when the spec is none of these. The race check (HostKernels) calls it
// between launches it holds back others from; it is process-wide.
extern "C" __attribute__((visibility("default"))) int tandem_host_set_order(const char* spec) {
    tandem_host::ThreadOrder order;
    if (!tandem_host::parse_order(spec, order)) {
        return tandem_host::fail(2, std::string("thread order ") + (spec ? spec : "(null)") + ": expected forward, reversed or shuffled:<seed>");
    }
    std::string ignored;
    tandem_host::order_now(ignored);  // TANDEM_HOST_ORDER is read first, so it cannot override this later
    std::lock_guard<std::mutex> lock(tandem_host::order_mutex);
    tandem_host::current_order = order;
    tandem_host::order_error.clear();
    return 0;
}

// The number of OS threads a launch uses (TANDEM_HOST_THREADS, default min(4, cores)).
extern "C" __attribute__((visibility("default"))) int tandem_host_threads() { return tandem_host::worker_count(); }
