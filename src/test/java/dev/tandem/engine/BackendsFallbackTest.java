package dev.tandem.engine;

import dev.tandem.model.ModelFile;
import dev.tandem.runtime.Backend;
import dev.tandem.runtime.LoadOptions;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.runtime.cuda.DeviceMemoryException;
import dev.tandem.runtime.cuda.UnsupportedWeightException;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code auto} chose CUDA, then loading failed: for a reason the CPU does not share (too little device memory, a
 * weight without a kernel, a CUDA error) the CUDA backend is closed and the models load on the CPU, with the reason;
 * any other failure, or a backend asked for by name, fails as it is.
 */
class BackendsFallbackTest {
    static final String TOO_SMALL = "model 'kjv-main' needs 9.00 GiB of device memory (weights 8.00 GiB + scratch 1.00 GiB)"
            + " but the GPU 'NVIDIA GeForce RTX 3070' has 7.50 GiB free of 8.00 GiB";

    /** A "cuda" backend that only records whether it was closed. */
    static final class FakeGpu implements Backend {
        boolean closed;

        @Override public String name() { return "cuda"; }

        @Override public LoadedModel load(ModelFile file, LoadOptions options) { throw new UnsupportedOperationException(); }

        @Override public void close() { closed = true; }
    }

    /** Fails with {@code failure} on the GPU, else returns the backend's name; records every backend tried. */
    static java.util.function.Function<Backend, String> loader(RuntimeException failure, List<String> tried) {
        return backend -> {
            tried.add(backend.name());
            if (backend.name().equals("cuda")) throw failure;
            return "loaded on " + backend.name();
        };
    }

    @Test
    void tooLittleDeviceMemoryUnderAutoLoadsOnTheCpuWithTheReason() {
        FakeGpu gpu = new FakeGpu();
        List<String> tried = new ArrayList<>();
        Backends.Loaded<String> l = Backends.load(new Backends.Selection(gpu, null), true, loader(new DeviceMemoryException(TOO_SMALL), tried));
        try (Backend cpu = l.backend()) {
            assertEquals(List.of("cuda", "cpu"), tried);
            assertTrue(gpu.closed, "the GPU backend is closed before the CPU loads");
            assertEquals("cpu", cpu.name());
            assertEquals("loaded on cpu", l.value());
            assertEquals("CUDA unavailable: " + TOO_SMALL + "; using the CPU", l.fallbackReason());
        }
    }

    @Test
    void aWeightWithoutAKernelAndACudaErrorAlsoGiveWayToTheCpu() {
        String weight = "tensor 'blk.0.attn_q.weight' has type Q5_0, which the CUDA backend has no kernel for";
        Backends.Loaded<String> l = Backends.load(new Backends.Selection(new FakeGpu(), null), true,
                loader(new UnsupportedWeightException(weight), new ArrayList<>()));
        l.backend().close();
        assertEquals("CUDA unavailable: " + weight + "; using the CPU", l.fallbackReason());

        RuntimeException cuda = new RuntimeException("load failed", new jcuda.CudaException("CUDA_ERROR_OUT_OF_MEMORY"));
        l = Backends.load(new Backends.Selection(new FakeGpu(), null), true, loader(cuda, new ArrayList<>()));
        l.backend().close();
        assertEquals("CUDA unavailable: CUDA error: CUDA_ERROR_OUT_OF_MEMORY; using the CPU", l.fallbackReason());
    }

    @Test
    void aBackendAskedForByNameFailsWithTheReasonInstead() {
        FakeGpu gpu = new FakeGpu();
        DeviceMemoryException tooSmall = new DeviceMemoryException(TOO_SMALL);
        List<String> tried = new ArrayList<>();
        var e = assertThrows(DeviceMemoryException.class, () -> Backends.load(new Backends.Selection(gpu, null), false, loader(tooSmall, tried)));
        assertSame(tooSmall, e);
        assertEquals(List.of("cuda"), tried);
        assertTrue(gpu.closed);
    }

    @Test
    void otherFailuresAreNotRetriedOnTheCpu() {
        FakeGpu gpu = new FakeGpu();
        List<String> tried = new ArrayList<>();
        IllegalArgumentException bad = new IllegalArgumentException("context length 99999 is outside 1..2048");
        assertSame(bad, assertThrows(IllegalArgumentException.class, () -> Backends.load(new Backends.Selection(gpu, null), true, loader(bad, tried))));
        assertEquals(List.of("cuda"), tried);
        assertTrue(gpu.closed);
        assertNull(Backends.reasonToLeaveCuda(bad));
    }

    @Test
    void withoutAGpuAutoIsTheCpuFromTheStartAndTheLoaderRunsOnce() {
        String reason = Backends.cudaUnavailableReason();
        org.junit.jupiter.api.Assumptions.assumeTrue(reason != null, "this machine has a usable CUDA device");
        List<String> tried = new ArrayList<>();
        Backends.Loaded<String> l = Backends.load("auto", loader(new IllegalStateException("not reached"), tried));
        l.backend().close();
        assertEquals(List.of("cpu"), tried);
        assertEquals("CUDA unavailable: " + reason + "; using the CPU", l.fallbackReason());
    }
}
