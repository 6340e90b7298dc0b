package dev.tandem.runtime.cuda;

import jcuda.CudaException;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.JCudaDriver;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * {@link JCudaGpuDriver} through JCuda on the emulated CUDA driver: the rules a real driver enforces catch each
 * deliberate violation, and the driver's error paths (a device fault, a failed capture) end in one named error,
 * never a hang or a leak. Each test opens its own driver: a fault loses the context, and the next open makes a
 * fresh one. (Waits on futures carry a generous limit only so that a regression fails instead of hanging CI.)
 */
@Tag("emulated-cuda")
class EmulatedCudaDriverTest {
    private static final int FLOATS = 256;

    JCudaGpuDriver driver;
    GpuStream stream;

    @BeforeAll
    static void emulatedDriver() { assumeTrue(EmulatedDevice.isActive(), EmulatedDevice::whyNot); }

    @BeforeEach
    void open() {
        EmulatedDevice.injectFault(0);
        driver = JCudaGpuDriver.open();
        stream = driver.createStream();
    }

    @AfterEach
    void close() {
        EmulatedDevice.injectFault(0);
        if (driver == null) return;
        try {
            stream.close();
        } catch (RuntimeException afterAFault) {
            // a faulted context refuses later calls; closing the driver releases it all the same
        }
        driver.close();
    }

    @Test
    void itNamesItselfAsEmulatedNotAsAGpu() {
        assertTrue(driver.describe().contains("emulated") && driver.describe().contains("not a GPU"), driver.describe());
        assertEquals(9, driver.facts().major());
    }

    @Test
    void freshDeviceMemoryHoldsGarbageNotZeroes() {
        try (DeviceBuffer d = driver.allocate(4096); PinnedBuffer h = driver.allocatePinned(4096)) {
            driver.copyToHost(h, 0, d, stream);
            driver.synchronize(stream);
            byte[] bytes = h.segment().toArray(ValueLayout.JAVA_BYTE);
            assertFalse(Arrays.equals(new byte[4096], bytes), "device memory read before any write was all zeroes");
        }
    }

    @Test
    void allocatingDuringCaptureIsRefusedAndTheCaptureKeepsThatCause() {
        long graphs = EmulatedDevice.liveGraphs();
        CudaException e = assertThrows(CudaException.class, () -> driver.capture(stream, () -> driver.allocate(256)));
        assertTrue(e.getMessage().contains("CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED"), e.getMessage());
        assertTrue(Arrays.stream(e.getSuppressed()).anyMatch(s -> s.getMessage().contains("CUDA_ERROR_STREAM_CAPTURE_INVALIDATED")),
                "the end of the capture's own failure should be kept as suppressed: " + Arrays.toString(e.getSuppressed()));
        assertEquals(graphs, EmulatedDevice.liveGraphs());
        assertStreamStillWorks();
    }

    @Test
    void synchronizingDuringCaptureIsRefused() {
        CudaException e = assertThrows(CudaException.class, () -> driver.capture(stream, () -> driver.synchronize(stream)));
        assertTrue(e.getMessage().contains("CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED"), e.getMessage());
        assertStreamStillWorks();
    }

    @Test
    void aCopyFromPageableMemoryCannotBeCaptured() {
        try (DeviceBuffer d = driver.allocate(16)) {
            CudaException e = assertThrows(CudaException.class, () -> driver.capture(stream,
                    () -> JCudaDriver.cuMemcpyHtoDAsync(JCudaGpuDriver.ptr(d), Pointer.to(ByteBuffer.allocateDirect(16)), 16, JCudaGpuDriver.handle(stream))));
            assertTrue(e.getMessage().contains("CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED"), e.getMessage());
        }
        assertStreamStillWorks();
    }

    @Test
    void aCaptureCannotWaitOnAnEventRecordedOutsideIt() {
        try (GpuStream other = driver.createStream(); GpuEvent outside = driver.createEvent()) {
            driver.record(outside, other);
            CudaException e = assertThrows(CudaException.class, () -> driver.capture(stream, () -> driver.wait(stream, outside)));
            assertTrue(e.getMessage().contains("CUDA_ERROR_STREAM_CAPTURE_ISOLATION"), e.getMessage());
        }
        assertStreamStillWorks();
    }

    @Test
    void aCaptureWhoseEnqueueThrowsRethrowsThatAndDestroysItsGraph() {
        long graphs = EmulatedDevice.liveGraphs();
        IllegalStateException planted = new IllegalStateException("planted");
        assertEquals(planted, assertThrows(IllegalStateException.class, () -> driver.capture(stream, () -> { throw planted; })));
        assertEquals(graphs, EmulatedDevice.liveGraphs(), "the graph of a failed capture leaked");
    }

    @Test
    void aCallWithNoCurrentContextFails() throws Exception {
        AtomicReference<Throwable> thrown = new AtomicReference<>();
        Thread t = Thread.ofPlatform().start(() -> {
            try {
                JCudaDriver.cuMemAlloc(new CUdeviceptr(), 16);
            } catch (Throwable e) {
                thrown.set(e);
            }
        });
        t.join();
        assertInstanceOf(CudaException.class, thrown.get());
        assertTrue(thrown.get().getMessage().contains("CUDA_ERROR_INVALID_CONTEXT"), thrown.get().getMessage());
    }

    @Test
    void dynamicSharedMemoryAbove48KiBNeedsTheOptIn() {
        try (DeviceBuffer a = driver.allocate(FLOATS * 4); DeviceBuffer b = driver.allocate(FLOATS * 4); DeviceBuffer out = driver.allocate(FLOATS * 4)) {
            KernelLaunchException e = assertThrows(KernelLaunchException.class,
                    () -> driver.launch(Kernel.SWIGLU, LaunchDims.of(1, 1, 1, 256, 48 * 1024 + 16), stream, a, b, out, FLOATS));
            assertTrue(e.getMessage().contains("CUDA_ERROR_INVALID_VALUE"), e.getMessage());
        }
    }

    @Test
    void aBlockAboveTheThreadLimitIsRefused() {
        try (DeviceBuffer a = driver.allocate(FLOATS * 4)) {
            KernelLaunchException e = assertThrows(KernelLaunchException.class,
                    () -> driver.launch(Kernel.SWIGLU, LaunchDims.of(1, 1, 1, 2048, 0), stream, a, a, a, FLOATS));
            assertTrue(e.getMessage().contains("CUDA_ERROR_INVALID_VALUE"), e.getMessage());
        }
    }

    /** Not java.io.tmpdir (a noexec /tmp breaks JCuda): the pom asks for target/jcuda-natives. */
    @Test
    void jcudaNativesAreUnpackedWhereAsked() throws Exception {
        try (var files = java.nio.file.Files.walk(JCudaNatives.directory())) {
            assertTrue(files.anyMatch(p -> p.getFileName().toString().startsWith("libJCudaDriver")), "no libJCudaDriver under " + JCudaNatives.directory());
        }
    }

    /**
     * swiglu is compiled with __launch_bounds__(256): the driver reads that from the fatbin's PTX and refuses a larger
     * block. (The PTX is zstd-compressed: without libzstd.so.1 the emulation knows only the device's limit.)
     */
    @Test
    void aBlockAboveTheKernelsLaunchBoundsIsRefused() {
        assumeTrue(hasZstd(), "libzstd.so.1 not installed: the emulated driver cannot read launch bounds");
        try (DeviceBuffer a = driver.allocate(FLOATS * 4)) {
            KernelLaunchException e = assertThrows(KernelLaunchException.class,
                    () -> driver.launch(Kernel.SWIGLU, LaunchDims.of(1, 1, 1, 512, 0), stream, a, a, a, FLOATS));
            assertTrue(e.getMessage().contains("CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES"), e.getMessage());
        }
    }

    /**
     * cuLaunchHostFunc is not called after a fault: whenDone must not depend on one, or it never completes. A driver
     * call that meets the fault first (it may come before the stream's callback) reports it as the same named
     * {@link DeviceFaultException}, never JCuda's bare exception.
     */
    @Test
    void aDeviceFaultFailsWhenDoneWithTheCudaErrorAndSkipsHostFunctions() throws Exception {
        AtomicBoolean hostFunctionRan = new AtomicBoolean();
        try (DeviceBuffer a = driver.allocate(FLOATS * 4)) {
            EmulatedDevice.injectFault(1);
            driver.launch(Kernel.SWIGLU, LaunchDims.linear(1, 256), stream, a, a, a, FLOATS);
            try {
                driver.call(() -> JCudaDriver.cuLaunchHostFunc(JCudaGpuDriver.handle(stream), data -> hostFunctionRan.set(true), null));
            } catch (DeviceFaultException alreadyFaulted) {
                // the fault may have happened before this call: then the call itself reports it, named as a fault
            }
            CompletableFuture<Void> done;
            try {
                done = driver.whenDone(stream);
            } catch (DeviceFaultException alreadyFaulted) {
                assertTrue(alreadyFaulted.getMessage().contains("CUDA_ERROR_ILLEGAL_ADDRESS"), alreadyFaulted.getMessage());
                return;
            }
            ExecutionException e = assertThrows(ExecutionException.class, () -> done.get(60, TimeUnit.SECONDS));
            assertInstanceOf(DeviceFaultException.class, e.getCause());
            assertTrue(e.getCause().getMessage().contains("CUDA_ERROR_ILLEGAL_ADDRESS"), e.getCause().getMessage());
            assertFalse(e.getCause().getMessage().contains("\n"));
        } catch (DeviceFaultException closingAfterTheFault) {
            assertTrue(closingAfterTheFault.getMessage().contains("CUDA_ERROR_ILLEGAL_ADDRESS"), closingAfterTheFault.getMessage());
        }
        assertFalse(hostFunctionRan.get(), "a host function ran after the device fault");
    }

    /** JCublasGemm through JCublas2 on the emulated libcublas.so.12: C = A·Bᵀ of small F16 matrices, exactly. */
    @Test
    void cublasGemmExMultipliesOnTheStream() {
        int m = 2, n = 3, k = 4;
        try (JCublasGemm gemm = JCublasGemm.open(driver); DeviceBuffer a = driver.allocate(m * k * 2); DeviceBuffer b = driver.allocate(n * k * 2);
             DeviceBuffer c = driver.allocate(m * n * 4); PinnedBuffer ha = driver.allocatePinned(m * k * 2);
             PinnedBuffer hb = driver.allocatePinned(n * k * 2); PinnedBuffer hc = driver.allocatePinned(m * n * 4)) {
            float[] expected = new float[m * n];
            for (int i = 0; i < m * k; i++) ha.segment().set(ValueLayout.JAVA_SHORT, 2L * i, Float.floatToFloat16(i - 3));
            for (int i = 0; i < n * k; i++) hb.segment().set(ValueLayout.JAVA_SHORT, 2L * i, Float.floatToFloat16(2 * i + 1));
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < n; j++) {
                    for (int l = 0; l < k; l++) expected[i * n + j] += (i * k + l - 3) * (2 * (j * k + l) + 1);
                }
            }
            driver.copyToDevice(a, ha, 0, stream);
            driver.copyToDevice(b, hb, 0, stream);
            gemm.multiply(stream, Gemm.Precision.F16, m, n, k, a, b, c, n);
            driver.copyToHost(hc, 0, c, stream);
            driver.synchronize(stream);
            assertEquals(Arrays.toString(expected), Arrays.toString(hc.segment().toArray(ValueLayout.JAVA_FLOAT)), gemm.describe());
        }
    }

    /** JCuda hands page-locked memory back as a ByteBuffer, which cannot exceed 2 GiB: such a request is refused by name. */
    @Test
    void pinnedBuffersOver2GiBAreRefusedByName() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> driver.allocatePinned((2L << 30) + 4096));
        assertTrue(e.getMessage().contains("2147487744 bytes") && e.getMessage().contains("pinned"), e.getMessage());
        try (PinnedBuffer p = driver.allocatePinned(Integer.MAX_VALUE)) {
            MemorySegment s = p.segment();
            assertEquals(Integer.MAX_VALUE, s.byteSize());
            s.set(ValueLayout.JAVA_BYTE, Integer.MAX_VALUE - 1, (byte) 7);
            assertEquals(7, s.get(ValueLayout.JAVA_BYTE, Integer.MAX_VALUE - 1));
        }
    }

    private static boolean hasZstd() {
        try {
            java.lang.foreign.SymbolLookup.libraryLookup("libzstd.so.1", java.lang.foreign.Arena.global());
            return true;
        } catch (IllegalArgumentException e) {
            return false;
        }
    }

    private void assertStreamStillWorks() {
        try (DeviceBuffer d = driver.allocate(16); PinnedBuffer in = driver.allocatePinned(16); PinnedBuffer out = driver.allocatePinned(16)) {
            in.segment().set(ValueLayout.JAVA_INT, 0, 42);
            driver.copyToDevice(d, in, 0, stream);
            driver.copyToHost(out, 0, d, stream);
            driver.synchronize(stream);
            assertEquals(42, out.segment().get(ValueLayout.JAVA_INT, 0), "the stream no longer works after the failed capture");
        }
    }
}
