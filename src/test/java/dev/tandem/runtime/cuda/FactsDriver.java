package dev.tandem.runtime.cuda;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;

/**
 * The host emulation posing as a GPU with the {@link DeviceFacts} a test gives (a small or old device), counting
 * device allocations, so that tests see what a real device would decide and that a refused load allocated nothing.
 */
final class FactsDriver implements GpuDriver {
    private final GpuDriver target;
    private volatile DeviceFacts facts;
    private final AtomicLong allocations = new AtomicLong();

    FactsDriver(GpuDriver target, DeviceFacts facts) {
        this.target = target;
        this.facts = facts;
    }

    void facts(DeviceFacts f) { this.facts = f; }

    /** Allocations so far, freed or not. */
    long allocations() { return allocations.get(); }

    @Override public DeviceFacts facts() { return facts; }

    @Override
    public DeviceBuffer allocate(long bytes) {
        allocations.incrementAndGet();
        return target.allocate(bytes);  // not wrapped: the target's own calls take its own buffer type
    }

    @Override public String name() { return target.name(); }
    @Override public String describe() { return target.describe(); }
    @Override public PinnedBuffer allocatePinned(long bytes) { return target.allocatePinned(bytes); }
    @Override public GpuStream createStream() { return target.createStream(); }
    @Override public GpuEvent createEvent() { return target.createEvent(); }
    @Override public void copyToDevice(DeviceBuffer dst, PinnedBuffer src, long srcOffset, GpuStream s) { target.copyToDevice(dst, src, srcOffset, s); }
    @Override public void copyToHost(PinnedBuffer dst, long dstOffset, DeviceBuffer src, GpuStream s) { target.copyToHost(dst, dstOffset, src, s); }
    @Override public void copyOnDevice(DeviceBuffer dst, DeviceBuffer src, GpuStream s) { target.copyOnDevice(dst, src, s); }
    @Override public void launch(Kernel kernel, LaunchDims dims, GpuStream s, Object... args) { target.launch(kernel, dims, s, args); }
    @Override public GpuGraph capture(GpuStream s, Runnable enqueue) { return target.capture(s, enqueue); }
    @Override public void launch(GpuGraph graph, GpuStream s) { target.launch(graph, s); }
    @Override public void record(GpuEvent e, GpuStream s) { target.record(e, s); }
    @Override public void wait(GpuStream s, GpuEvent e) { target.wait(s, e); }
    @Override public boolean isDone(GpuEvent e) { return target.isDone(e); }
    @Override public float elapsedMillis(GpuEvent start, GpuEvent end) { return target.elapsedMillis(start, end); }
    @Override public void synchronize(GpuStream s) { target.synchronize(s); }
    @Override public CompletableFuture<Void> whenDone(GpuStream s) { return target.whenDone(s); }
    @Override public <T> T call(Supplier<T> work) { return target.call(work); }
    @Override public void close() { target.close(); }
}
