package dev.tandem.runtime.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;

/**
 * The CUDA backend's device on the host: "device memory" is native memory, kernels run through
 * {@link HostKernels} (the same {@code kernels/*.cu} compiled with g++), a stream is a single-thread executor
 * (so its work runs in order, off the caller's thread), and an event is a future that the stream completes when
 * it reaches the event's record. Work on different streams really overlaps, as on a GPU.
 */
public final class HostGpuDriver implements GpuDriver {
    /** cuMemAlloc's alignment; the kernels need 16 bytes. */
    private static final long ALIGNMENT = 256;

    private final HostKernels kernels;
    private final AtomicInteger streamCount = new AtomicInteger();

    /** @throws HostKernelsUnavailableException when the host-emulation library is missing */
    public HostGpuDriver() {
        this.kernels = HostKernels.get();
    }

    @Override public String name() { return "cuda-host"; }

    @Override
    public String describe() {
        return "CUDA host emulation (" + kernels.library().getFileName() + ", " + Runtime.getRuntime().availableProcessors() + " cores)";
    }

    private record Buffer(MemorySegment segment, Arena arena) implements DeviceBuffer {
        @Override public long byteSize() { return segment.byteSize(); }

        @Override public DeviceBuffer slice(long offset, long bytes) { return new Buffer(segment.asSlice(offset, bytes), null); }

        @Override public void close() { if (arena != null) arena.close(); }
    }

    private record Pinned(MemorySegment segment, Arena arena) implements PinnedBuffer {
        @Override public void close() { arena.close(); }
    }

    /** Runs its work in order on one thread; the first failure is kept until it is reported. */
    private static final class Stream implements GpuStream {
        final ExecutorService executor;
        volatile Throwable failure;
        /** Non-null while a capture is open: work is recorded here instead of run. */
        java.util.List<Runnable> capturing;

        Stream(String name) {
            executor = Executors.newSingleThreadExecutor(r -> {
                Thread t = new Thread(r, name);
                t.setDaemon(true);
                return t;
            });
        }

        void enqueue(Runnable work) {
            if (capturing != null) {
                capturing.add(work);
                return;
            }
            executor.execute(() -> {
                if (failure != null) return;  // like a CUDA stream after an error: later work does not run
                try {
                    work.run();
                } catch (Throwable t) {
                    failure = t;
                }
            });
        }

        /** The failure so far, cleared: it is reported once. */
        Throwable takeFailure() {
            Throwable t = failure;
            failure = null;
            return t;
        }

        @Override public void close() { executor.shutdown(); }
    }

    /** The latest record's future, completed with the time the stream reached it. */
    private static final class Event implements GpuEvent {
        volatile CompletableFuture<Long> reached = CompletableFuture.completedFuture(System.nanoTime());

        @Override public void close() {}
    }

    @Override
    public DeviceBuffer allocate(long bytes) {
        Arena arena = Arena.ofShared();
        return new Buffer(arena.allocate(Math.max(bytes, 1), ALIGNMENT).asSlice(0, bytes), arena);
    }

    @Override
    public PinnedBuffer allocatePinned(long bytes) {
        Arena arena = Arena.ofShared();
        return new Pinned(arena.allocate(Math.max(bytes, 1), ALIGNMENT).asSlice(0, bytes), arena);
    }

    @Override
    public GpuStream createStream() { return new Stream("cuda-host-stream-" + streamCount.incrementAndGet()); }

    @Override public GpuEvent createEvent() { return new Event(); }

    private static Stream stream(GpuStream s) { return (Stream) s; }

    /** The native memory behind a buffer of this driver. */
    static MemorySegment segment(DeviceBuffer b) { return ((Buffer) b).segment; }

    @Override
    public void copyToDevice(DeviceBuffer dst, PinnedBuffer src, long srcOffset, GpuStream s) {
        MemorySegment to = segment(dst), from = src.segment().asSlice(srcOffset, dst.byteSize());
        stream(s).enqueue(() -> to.copyFrom(from));
    }

    @Override
    public void copyToHost(PinnedBuffer dst, long dstOffset, DeviceBuffer src, GpuStream s) {
        MemorySegment to = dst.segment().asSlice(dstOffset, src.byteSize()), from = segment(src);
        stream(s).enqueue(() -> to.copyFrom(from));
    }

    @Override
    public void copyOnDevice(DeviceBuffer dst, DeviceBuffer src, GpuStream s) {
        MemorySegment to = segment(dst).asSlice(0, src.byteSize()), from = segment(src);
        stream(s).enqueue(() -> to.copyFrom(from));
    }

    @Override
    public void launch(Kernel kernel, LaunchDims dims, GpuStream s, Object... args) {
        Object[] native_ = new Object[args.length];
        for (int i = 0; i < args.length; i++) {
            native_[i] = args[i] instanceof DeviceBuffer b ? segment(b) : args[i] == null ? MemorySegment.NULL : args[i];
        }
        stream(s).enqueue(() -> kernels.launch(kernel, dims, native_));
    }

    /** The recorded work, in stream order; replays run it again with the arguments captured. */
    private record Graph(java.util.List<Runnable> work) implements GpuGraph {
        @Override public void close() {}
    }

    @Override
    public GpuGraph capture(GpuStream s, Runnable enqueue) {
        Stream st = stream(s);
        if (st.capturing != null) throw new IllegalStateException("stream is already capturing");
        st.capturing = new java.util.ArrayList<>();
        try {
            enqueue.run();
            return new Graph(java.util.List.copyOf(st.capturing));
        } finally {
            st.capturing = null;
        }
    }

    @Override
    public void launch(GpuGraph graph, GpuStream s) {
        java.util.List<Runnable> work = ((Graph) graph).work();
        stream(s).enqueue(() -> {
            for (Runnable w : work) w.run();
        });
    }

    @Override
    public void record(GpuEvent e, GpuStream s) {
        CompletableFuture<Long> reached = new CompletableFuture<>();
        ((Event) e).reached = reached;
        stream(s).executor.execute(() -> reached.complete(System.nanoTime()));
    }

    @Override
    public void wait(GpuStream s, GpuEvent e) {
        CompletableFuture<Long> reached = ((Event) e).reached;
        stream(s).executor.execute(reached::join);
    }

    @Override public boolean isDone(GpuEvent e) { return ((Event) e).reached.isDone(); }

    @Override
    public float elapsedMillis(GpuEvent start, GpuEvent end) {
        return (((Event) end).reached.join() - ((Event) start).reached.join()) / 1e6f;
    }

    @Override
    public void synchronize(GpuStream s) {
        try {
            whenDone(s).join();
        } catch (java.util.concurrent.CompletionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof RuntimeException r) throw r;
            if (cause instanceof Error err) throw err;
            throw e;
        }
    }

    @Override
    public CompletableFuture<Void> whenDone(GpuStream s) {
        Stream st = stream(s);
        CompletableFuture<Void> done = new CompletableFuture<>();
        // Completed from the stream's thread; dependants run on the common pool, never on the stream.
        st.executor.execute(() -> {
            Throwable t = st.takeFailure();
            if (t == null) done.completeAsync(() -> null);
            else CompletableFuture.runAsync(() -> done.completeExceptionally(t));
        });
        return done;
    }

    @Override public <T> T call(Supplier<T> work) { return work.get(); }

    /** Enqueues host work on {@code stream} (cuLaunchHostFunc's counterpart; tests use it to hold a stream). */
    void enqueue(GpuStream stream, Runnable work) { stream(stream).enqueue(work); }

    @Override public void close() {}
}
