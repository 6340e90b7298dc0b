package dev.tandem.runtime.cuda;

import dev.tandem.runtime.BackendUnavailableException;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;
import jcuda.driver.CUresult;
import jcuda.driver.CUstream;
import jcuda.driver.CUstream_flags;
import jcuda.driver.JCudaDriver;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Supplier;

/**
 * A real GPU through JCuda's driver API binding. A CUDA context is current on one thread at a time, and
 * allocations and modules belong to it, so every call runs on one owner thread (which retained device 0's
 * primary context and made it current); {@link #call} lets a whole forward pass run there. Streams are
 * non-blocking (no implicit sync with the legacy default stream), so two models' streams overlap.
 *
 * <p>Never touch this class before {@link #probe()} returned {@code null}: JCuda's natives need
 * {@code libcuda.so.1}.
 *
 * <p>Longer than most classes here (about 440 lines) because it is the whole {@link GpuDriver} over one CUDA
 * context: each method is a few lines of driver calls, and all of them share the owner thread, the context and
 * the handling of a lost context, which splitting would spread over classes that each need all three.
 */
public final class JCudaGpuDriver implements GpuDriver {
    private final ExecutorService owner;
    private final Thread ownerThread;
    private CUdevice device;
    private CUcontext context;
    private final Map<Kernel, CUfunction> functions = new HashMap<>();
    private String description;
    private DeviceFacts identity;

    /** Why this machine cannot run the CUDA backend, in one line; {@code null} when it can. Never throws. */
    public static String probe() {
        String reason = CudaProbe.unavailableReason();
        if (reason != null) return reason;
        try {
            JCudaNatives.load(() -> JCudaDriver.setExceptionsEnabled(true));
            return null;
        } catch (Throwable t) {
            return "JCuda's driver binding cannot be loaded: " + JCudaNatives.firstLine(t);
        }
    }

    /** Opens device 0 and loads the kernels; {@link BackendUnavailableException} with the probe's reason otherwise. */
    public static JCudaGpuDriver open() {
        String reason = probe();
        if (reason != null) throw new BackendUnavailableException("CUDA unavailable: " + reason);
        return new JCudaGpuDriver();
    }

    private JCudaGpuDriver() {
        Thread[] made = new Thread[1];
        owner = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "cuda-owner");
            t.setDaemon(true);
            made[0] = t;
            return t;
        });
        try {
            owner.submit(() -> {}).get();
        } catch (InterruptedException | ExecutionException e) {
            throw new IllegalStateException(e);
        }
        ownerThread = made[0];
        try {
            call(() -> {
                JCudaDriver.setExceptionsEnabled(true);
                JCudaDriver.cuInit(0);
                device = new CUdevice();
                JCudaDriver.cuDeviceGet(device, 0);
                identity = readFacts();
                // Before any context or module: an sm_75 GPU would otherwise fail at cuModuleLoadData with a CUresult.
                String unsupported = DeviceRequirements.unsupportedGpu(identity);
                if (unsupported != null) throw new BackendUnavailableException("CUDA unavailable: " + unsupported);
                CUcontext retained = new CUcontext();
                JCudaDriver.cuDevicePrimaryCtxRetain(retained, device);
                context = retained;
                JCudaDriver.cuCtxSetCurrent(context);
                CUmodule module = new CUmodule();
                JCudaDriver.cuModuleLoadData(module, fatbin());
                for (Kernel k : Kernel.all()) {
                    CUfunction f = new CUfunction();
                    JCudaDriver.cuModuleGetFunction(f, module, k.cudaName());
                    functions.put(k, f);
                }
                description = describe(identity);
                return null;
            });
        } catch (RuntimeException e) {
            try {
                if (context != null) run(() -> JCudaDriver.cuDevicePrimaryCtxRelease(device));
            } catch (RuntimeException releaseFailed) {
                e.addSuppressed(releaseFailed);
            }
            owner.shutdown();
            throw e;
        }
    }

    private static byte[] fatbin() {
        try (InputStream in = JCudaGpuDriver.class.getResourceAsStream(CudaProbe.FATBIN)) {
            if (in == null) throw new BackendUnavailableException("CUDA unavailable: " + CudaProbe.FATBIN + " is not in this build");
            return in.readAllBytes();
        } catch (IOException e) {
            throw new BackendUnavailableException("CUDA unavailable: cannot read " + CudaProbe.FATBIN + ": " + e.getMessage(), e);
        }
    }

    /** Device 0's name, compute capability, memory and driver; free memory is asked for by {@link #facts()}. */
    private DeviceFacts readFacts() {
        byte[] name = new byte[256];
        JCudaDriver.cuDeviceGetName(name, name.length, device);
        int n = 0;
        while (n < name.length && name[n] != 0) n++;
        long[] memory = new long[1];
        JCudaDriver.cuDeviceTotalMem(memory, device);
        int[] major = new int[1], minor = new int[1], version = new int[1];
        JCudaDriver.cuDeviceGetAttribute(major, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device);
        JCudaDriver.cuDeviceGetAttribute(minor, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device);
        JCudaDriver.cuDriverGetVersion(version);
        return new DeviceFacts(new String(name, 0, n, StandardCharsets.US_ASCII), major[0], minor[0], -1, memory[0], version[0]);
    }

    private static String describe(DeviceFacts f) {
        return f.name() + ", sm_" + f.major() + f.minor() + ", " + f.totalBytes() / (1 << 20) + " MiB, driver for CUDA "
                + f.driverVersion() / 1000 + "." + f.driverVersion() % 1000 / 10;
    }

    /** {@link #readFacts()} with the free memory of this moment (cuMemGetInfo). */
    @Override
    public DeviceFacts facts() {
        return call(() -> {
            long[] free = new long[1], total = new long[1];
            JCudaDriver.cuMemGetInfo(free, total);
            return identity.withFree(free[0]);
        });
    }

    @Override public String name() { return "cuda"; }

    @Override public String describe() { return description; }

    @Override
    public <T> T call(Supplier<T> work) {
        if (Thread.currentThread() == ownerThread) return faultsNamed(work);
        Future<T> f = owner.submit(() -> faultsNamed(work));
        try {
            return f.get();
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RuntimeException r) throw r;
            if (e.getCause() instanceof Error err) throw err;
            throw new IllegalStateException(e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for the CUDA owner thread", e);
        }
    }

    /**
     * Runs {@code work}. After a device fault every driver call fails with the fault's error, and whichever call meets
     * it first — often an enqueue, before the stream's callback has reported it — throws JCuda's bare exception; such
     * an error is a {@link DeviceFaultException} here, as the callback's is, so that every caller names it and
     * treats the context as lost whichever way it surfaced.
     */
    private static <T> T faultsNamed(Supplier<T> work) {
        try {
            return work.get();
        } catch (jcuda.CudaException e) {
            if (CONTEXT_LOST.contains(e.getMessage())) throw new DeviceFaultException(e.getMessage(), "work on a CUDA stream");
            throw e;
        }
    }

    private void run(Runnable work) {
        call(() -> {
            work.run();
            return null;
        });
    }

    /**
     * The CUDA errors after which the context is lost (a device fault): every later call returns them, frees
     * included. Freeing then cannot fail in any way that matters (the context takes its memory with it), so
     * {@link #release} lets closing go on instead of replacing the fault a caller is reporting.
     */
    private static final java.util.Set<String> CONTEXT_LOST = java.util.Set.of("CUDA_ERROR_ILLEGAL_ADDRESS", "CUDA_ERROR_LAUNCH_FAILED",
            "CUDA_ERROR_MISALIGNED_ADDRESS", "CUDA_ERROR_ILLEGAL_INSTRUCTION", "CUDA_ERROR_HARDWARE_STACK_ERROR", "CUDA_ERROR_ASSERT",
            "CUDA_ERROR_LAUNCH_TIMEOUT", "CUDA_ERROR_INVALID_PC", "CUDA_ERROR_ECC_UNCORRECTABLE", "CUDA_ERROR_CONTEXT_IS_DESTROYED");

    /** Frees or destroys: a failure because the context was lost to a device fault is not a failure to free. */
    private void release(Runnable free) {
        run(() -> {
            try {
                free.run();
            } catch (jcuda.CudaException e) {
                if (!CONTEXT_LOST.contains(e.getMessage())) throw e;
            }
        });
    }

    private final class Buffer implements DeviceBuffer {
        final CUdeviceptr pointer;
        final long bytes;
        final boolean owns;

        Buffer(CUdeviceptr pointer, long bytes, boolean owns) {
            this.pointer = pointer;
            this.bytes = bytes;
            this.owns = owns;
        }

        @Override public long byteSize() { return bytes; }

        @Override
        public DeviceBuffer slice(long offset, long length) {
            if (offset < 0 || length < 0 || offset + length > bytes) {
                throw new IndexOutOfBoundsException("slice [" + offset + ", " + (offset + length) + ") of a " + bytes + "-byte device buffer");
            }
            return new Buffer(pointer.withByteOffset(offset), length, false);
        }

        @Override public void close() { if (owns) release(() -> JCudaDriver.cuMemFree(pointer)); }
    }

    private final class Pinned implements PinnedBuffer {
        final Pointer pointer;
        final MemorySegment segment;

        Pinned(Pointer pointer, long bytes) {
            this.pointer = pointer;
            this.segment = MemorySegment.ofBuffer(pointer.getByteBuffer(0, bytes));
        }

        @Override public MemorySegment segment() { return segment; }

        @Override public void close() { release(() -> JCudaDriver.cuMemFreeHost(pointer)); }
    }

    private final class Stream implements GpuStream {
        final CUstream handle = new CUstream();

        @Override public void close() { release(() -> JCudaDriver.cuStreamDestroy(handle)); }
    }

    private final class Event implements GpuEvent {
        final CUevent handle = new CUevent();

        @Override public void close() { release(() -> JCudaDriver.cuEventDestroy(handle)); }
    }

    @Override
    public DeviceBuffer allocate(long bytes) {
        return call(() -> {
            CUdeviceptr p = new CUdeviceptr();
            JCudaDriver.cuMemAlloc(p, Math.max(bytes, 1));
            return new Buffer(p, bytes, true);
        });
    }

    /** JCuda returns page-locked memory as a ByteBuffer (cuMemAllocHost's JNI side makes one): at most 2 GiB - 1 bytes. */
    @Override
    public PinnedBuffer allocatePinned(long bytes) {
        if (bytes > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("a pinned host buffer of " + bytes + " bytes: JCuda's cuMemAllocHost allows at most "
                    + Integer.MAX_VALUE + " (2 GiB - 1); stage larger copies in parts");
        }
        return call(() -> {
            Pointer p = new Pointer();
            JCudaDriver.cuMemAllocHost(p, Math.max(bytes, 1));
            return new Pinned(p, bytes);
        });
    }

    @Override
    public GpuStream createStream() {
        return call(() -> {
            Stream s = new Stream();
            JCudaDriver.cuStreamCreate(s.handle, CUstream_flags.CU_STREAM_NON_BLOCKING);
            return s;
        });
    }

    @Override
    public GpuEvent createEvent() {
        return call(() -> {
            Event e = new Event();
            JCudaDriver.cuEventCreate(e.handle, CUevent_flags.CU_EVENT_DEFAULT);
            return e;
        });
    }

    static CUdeviceptr ptr(DeviceBuffer b) { return ((Buffer) b).pointer; }

    static CUstream handle(GpuStream s) { return ((Stream) s).handle; }

    @Override
    public void copyToDevice(DeviceBuffer dst, PinnedBuffer src, long srcOffset, GpuStream s) {
        // Pointer.to(buffer) would ignore a buffer's position: offsets go through withByteOffset.
        run(() -> JCudaDriver.cuMemcpyHtoDAsync(ptr(dst), ((Pinned) src).pointer.withByteOffset(srcOffset), dst.byteSize(), handle(s)));
    }

    @Override
    public void copyToHost(PinnedBuffer dst, long dstOffset, DeviceBuffer src, GpuStream s) {
        run(() -> JCudaDriver.cuMemcpyDtoHAsync(((Pinned) dst).pointer.withByteOffset(dstOffset), ptr(src), src.byteSize(), handle(s)));
    }

    @Override
    public void copyOnDevice(DeviceBuffer dst, DeviceBuffer src, GpuStream s) {
        run(() -> JCudaDriver.cuMemcpyDtoDAsync(ptr(dst), ptr(src), src.byteSize(), handle(s)));
    }

    @Override
    public void launch(Kernel kernel, LaunchDims d, GpuStream s, Object... args) {
        if (args.length != kernel.args().size()) {
            throw new IllegalArgumentException(kernel.cudaName() + " takes " + kernel.args().size() + " arguments, got " + args.length);
        }
        Pointer[] params = new Pointer[args.length];
        for (int i = 0; i < args.length; i++) {
            Object a = args[i];
            params[i] = switch (kernel.args().get(i)) {
                case P -> Pointer.to(a == null ? new CUdeviceptr() : ptr((DeviceBuffer) a));
                case I -> Pointer.to(new int[] {(Integer) a});
                case F -> Pointer.to(new float[] {(Float) a});
            };
        }
        run(() -> {
            try {
                JCudaDriver.cuLaunchKernel(functions.get(kernel), d.gridX(), d.gridY(), d.gridZ(), d.blockX(), d.blockY(), d.blockZ(),
                        d.sharedBytes(), handle(s), Pointer.to(params), null);
            } catch (RuntimeException e) {
                throw new KernelLaunchException(kernel.cudaName() + " " + d + ": " + e.getMessage(), e);
            }
        });
    }

    private final class Graph implements GpuGraph {
        final jcuda.driver.CUgraph graph = new jcuda.driver.CUgraph();
        final jcuda.driver.CUgraphExec exec = new jcuda.driver.CUgraphExec();

        @Override
        public void close() {
            release(() -> JCudaDriver.cuGraphExecDestroy(exec));
            release(() -> JCudaDriver.cuGraphDestroy(graph));
        }
    }

    /**
     * When {@code enqueue} fails, the capture is still ended (a stream left capturing refuses all later work), and
     * the failure of ending it (CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, which any failure inside causes) is kept as
     * suppressed: the caller sees the original cause. A graph that was made but cannot be instantiated is destroyed.
     */
    @Override
    public GpuGraph capture(GpuStream s, Runnable enqueue) {
        return call(() -> {
            Graph g = new Graph();
            // Thread-local mode: only this (owner) thread's unsafe calls are refused during the capture.
            JCudaDriver.cuStreamBeginCapture(handle(s), jcuda.driver.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL);
            RuntimeException failure = null;
            try {
                enqueue.run();
            } catch (RuntimeException e) {
                failure = e;
            }
            boolean made = false;
            try {
                JCudaDriver.cuStreamEndCapture(handle(s), g.graph);
                made = true;
            } catch (RuntimeException endFailed) {
                if (failure == null) failure = endFailed;
                else failure.addSuppressed(endFailed);
            }
            try {
                if (failure != null) throw failure;
                JCudaDriver.cuGraphInstantiate(g.exec, g.graph, 0);
                return g;
            } catch (RuntimeException e) {
                if (made) {
                    try {
                        JCudaDriver.cuGraphDestroy(g.graph);
                    } catch (RuntimeException destroyFailed) {
                        e.addSuppressed(destroyFailed);
                    }
                }
                throw e;
            }
        });
    }

    @Override public void launch(GpuGraph graph, GpuStream s) { run(() -> JCudaDriver.cuGraphLaunch(((Graph) graph).exec, handle(s))); }

    @Override public void record(GpuEvent e, GpuStream s) { run(() -> JCudaDriver.cuEventRecord(((Event) e).handle, handle(s))); }

    @Override public void wait(GpuStream s, GpuEvent e) { run(() -> JCudaDriver.cuStreamWaitEvent(handle(s), ((Event) e).handle, 0)); }

    @Override
    public boolean isDone(GpuEvent e) {
        return call(() -> {
            JCudaDriver.setExceptionsEnabled(false);  // CUDA_ERROR_NOT_READY is an answer here, not a failure
            try {
                int status = JCudaDriver.cuEventQuery(((Event) e).handle);
                if (status == jcuda.driver.CUresult.CUDA_SUCCESS) return true;
                if (status == jcuda.driver.CUresult.CUDA_ERROR_NOT_READY) return false;
                throw new jcuda.CudaException(jcuda.driver.CUresult.stringFor(status));
            } finally {
                JCudaDriver.setExceptionsEnabled(true);
            }
        });
    }

    @Override
    public float elapsedMillis(GpuEvent start, GpuEvent end) {
        return call(() -> {
            float[] ms = new float[1];
            JCudaDriver.cuEventElapsedTime(ms, ((Event) start).handle, ((Event) end).handle);
            return ms[0];
        });
    }

    @Override public void synchronize(GpuStream s) { run(() -> JCudaDriver.cuStreamSynchronize(handle(s))); }

    /**
     * A stream callback, not a host function: CUDA skips host functions once the context has an error, so a
     * future completed by one would never complete after a device fault; a callback is called with the error. It
     * runs on a driver thread that must not call CUDA: completion is handed to the common pool.
     */
    @Override
    public CompletableFuture<Void> whenDone(GpuStream s) {
        CompletableFuture<Void> done = new CompletableFuture<>();
        run(() -> JCudaDriver.cuStreamAddCallback(handle(s), (stream, status, data) -> {
            if (status == CUresult.CUDA_SUCCESS) done.completeAsync(() -> null);
            else CompletableFuture.runAsync(() -> done.completeExceptionally(new DeviceFaultException(CUresult.stringFor(status), "work on a CUDA stream")));
        }, null, 0));
        return done;
    }

    @Override
    public void close() {
        run(() -> JCudaDriver.cuDevicePrimaryCtxRelease(device));
        owner.shutdown();
    }
}
