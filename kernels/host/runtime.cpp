// The host-emulation scheduler: fibers (ucontext) for the threads of a block, a few OS threads for the grid.
#include "cuda_host.h"

#include <sys/mman.h>
#include <ucontext.h>

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

#ifdef TANDEM_FAST_SWITCH
void yield_to_scheduler(Fiber* f) { tandem_switch_stack(&f->sp, current_block->scheduler); }
void resume(Block& b, Fiber& f) { tandem_switch_stack(&b.scheduler, f.sp); }

[[noreturn]] void fiber_main() {
    Fiber* f = current_fiber;
    (*current_block->kernel)();
    f->state = State::Done;
    yield_to_scheduler(f);  // never resumed
    __builtin_unreachable();
}

// Lays out a fresh stack as tandem_switch_stack leaves a suspended one, "returning" into fiber_main with the
// stack aligned as right after a call.
void start(Block&, Fiber& f, char* base, size_t bytes) {
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
void yield_to_scheduler(Fiber* f) { swapcontext(&f->context, &current_block->scheduler); }
void resume(Block& b, Fiber& f) { swapcontext(&b.scheduler, &f.context); }

void fiber_main() {
    Fiber* f = current_fiber;
    (*current_block->kernel)();
    f->state = State::Done;
    // returning resumes uc_link, the scheduler
}

void start(Block& b, Fiber& f, char* base, size_t bytes) {
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
    std::string run(uint3 index, dim3 dim, dim3 grid, unsigned sharedBytes, const std::function<void()>& kernel) {
        unsigned n = dim.x * dim.y * dim.z;
        while (stacks.size() < n) {
            stacks.emplace_back(stack_bytes());
            if (!stacks.back().base) return "cannot map a fiber stack";
        }
        if (shared.size() < sharedBytes + 16) shared.resize(sharedBytes + 16);
        Block& b = block;
        b.index = index;
        b.dim = dim;
        b.grid = grid;
        uintptr_t aligned = ((uintptr_t) shared.data() + 15) & ~(uintptr_t) 15;
        b.shared = (unsigned char*) aligned;
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
            b.warpLive[f.warp]++;
            start(b, f, (char*) stacks[t].base + 4096, stacks[t].bytes - 4096);
        }

        current_block = &b;
        while (b.live > 0) {
            bool ran = false;
            for (Fiber& f : b.fibers) {
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
    std::atomic<size_t> next{0};
    std::atomic<bool> failed{false};
    std::string error;
    std::mutex errorLock;
    auto work = [&] {
        Worker* worker = borrow_worker();
        for (size_t i; !failed.load() && (i = next.fetch_add(1)) < blocks;) {
            uint3 index{(unsigned) (i % grid.x), (unsigned) ((i / grid.x) % grid.y), (unsigned) (i / ((size_t) grid.x * grid.y))};
            std::string e = worker->run(index, block, grid, sharedBytes, kernel);
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

// The number of OS threads a launch uses (TANDEM_HOST_THREADS, default min(4, cores)).
extern "C" __attribute__((visibility("default"))) int tandem_host_threads() { return tandem_host::worker_count(); }
