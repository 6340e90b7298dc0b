package dev.tandem.runtime.cuda;

import java.util.concurrent.CompletableFuture;
import java.util.function.Supplier;

/**
 * The seam between the CUDA backend and a device: memory, copies, kernel launches, streams and events, with the
 * semantics of the CUDA driver API. {@link JCudaGpuDriver} drives a real GPU; {@link HostGpuDriver} runs the same
 * kernels on the host emulation, with real streams (ordered executors) and events, so that everything above
 * this interface is tested without a GPU.
 *
 * <p>Copies and launches are asynchronous: they are enqueued on a stream and run in stream order. Errors of
 * enqueued work surface at {@link #synchronize} or through {@link #whenDone}. Kernel arguments follow
 * {@link Kernel#args()}: a {@link DeviceBuffer} (or {@code null}) per pointer, an {@link Integer} per int, a
 * {@link Float} per float.
 */
public interface GpuDriver extends AutoCloseable {
    /** The backend name this driver gives: "cuda" or "cuda-host". */
    String name();

    /** One line for messages: the device, its memory, the driver. */
    String describe();

    /**
     * What the device reports now (free memory changes as models load), for {@link DeviceRequirements}; null where
     * there is no device memory to run out of (the host emulation).
     */
    default DeviceFacts facts() { return null; }

    /** Device memory of {@code bytes} bytes, aligned for any kernel argument (at least 256 bytes). */
    DeviceBuffer allocate(long bytes);

    /** Page-locked host memory of {@code bytes} bytes. */
    PinnedBuffer allocatePinned(long bytes);

    GpuStream createStream();

    GpuEvent createEvent();

    /** Enqueues a copy of {@code dst.byteSize()} bytes from {@code src} at {@code srcOffset} to the device. */
    void copyToDevice(DeviceBuffer dst, PinnedBuffer src, long srcOffset, GpuStream stream);

    /** Enqueues a copy of {@code src.byteSize()} bytes from the device into {@code dst} at {@code dstOffset}. */
    void copyToHost(PinnedBuffer dst, long dstOffset, DeviceBuffer src, GpuStream stream);

    /** Enqueues a device-to-device copy of {@code src.byteSize()} bytes. */
    void copyOnDevice(DeviceBuffer dst, DeviceBuffer src, GpuStream stream);

    /** Enqueues {@code kernel} over the grid {@code dims}. */
    void launch(Kernel kernel, LaunchDims dims, GpuStream stream, Object... args);

    /**
     * Captures the copies and launches that {@code enqueue} puts on {@code stream}, without running them
     * (cuStreamBeginCapture .. cuStreamEndCapture, then cuGraphInstantiate). Only {@code stream} may be used
     * inside, and nothing may wait on it.
     */
    GpuGraph capture(GpuStream stream, Runnable enqueue);

    /** Enqueues a captured graph's work on {@code stream}, as one launch (cuGraphLaunch). */
    void launch(GpuGraph graph, GpuStream stream);

    /** Marks the current end of {@code stream}'s work with {@code event} (re-recording moves the mark). */
    void record(GpuEvent event, GpuStream stream);

    /** Work enqueued on {@code stream} after this call waits until {@code event}'s latest record is reached. */
    void wait(GpuStream stream, GpuEvent event);

    /** Whether the work before {@code event}'s latest record is done. */
    boolean isDone(GpuEvent event);

    /** Milliseconds between two completed events. */
    float elapsedMillis(GpuEvent start, GpuEvent end);

    /** Blocks until all work enqueued on {@code stream} is done; rethrows the first failure of that work. */
    void synchronize(GpuStream stream);

    /**
     * A future completed when all work enqueued on {@code stream} so far is done (exceptionally when it failed).
     * Dependent actions never run on the driver's own threads.
     */
    CompletableFuture<Void> whenDone(GpuStream stream);

    /**
     * Runs {@code work} where this driver may be called cheaply: on the thread that owns the CUDA context, or
     * on the caller's thread when the driver has no owner thread. A forward pass enqueues all its work in one
     * such call, so that each launch costs no thread hand-off.
     */
    <T> T call(Supplier<T> work);

    @Override
    void close();
}
