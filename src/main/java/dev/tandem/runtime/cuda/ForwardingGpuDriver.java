package dev.tandem.runtime.cuda;

import java.util.concurrent.CompletableFuture;
import java.util.function.Supplier;

/**
 * A {@link GpuDriver} that hands every call to another one; a subclass overrides the calls it watches or changes
 * ({@link KernelProfile} times launches, tests count them or pose as another device). Buffers, streams and events
 * stay the target's own objects.
 */
public abstract class ForwardingGpuDriver implements GpuDriver {
    protected final GpuDriver target;

    protected ForwardingGpuDriver(GpuDriver target) { this.target = target; }

    @Override public String name() { return target.name(); }
    @Override public String describe() { return target.describe(); }
    @Override public DeviceFacts facts() { return target.facts(); }
    @Override public DeviceBuffer allocate(long bytes) { return target.allocate(bytes); }
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
