package dev.tandem.runtime.cuda;

import dev.tandem.model.ModelFile;
import dev.tandem.runtime.LoadOptions;
import dev.tandem.testing.ReferenceRecords;
import dev.tandem.testing.SharedData;
import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * CUDA graphs are on by default, and a driver that cannot capture a pass costs only the launch overhead: the
 * model notes the failure once, runs the pass directly and keeps running without graphs.
 */
class CudaGraphFallbackTest {

    @Test
    void graphsAreOnByDefault() {
        assumeTrue(HostKernels.isAvailable(), () -> "host-emulation kernels not built: " + HostKernels.unavailableReason());
        assumeTrue(System.getProperty("tandem.cudaGraphs") == null, "tandem.cudaGraphs is set for this run");
        try (CudaBackend cuda = CudaBackend.onHost(); ModelFile file = ModelFile.open(SharedData.kjv("kjv-draft-f32.gguf"));
             CudaModel model = (CudaModel) cuda.load(file, LoadOptions.defaults())) {
            int[] prompt = ReferenceRecords.generations("kjv-draft-f32.jsonl").getFirst().promptTokens();
            ModelRuns.greedy(model, prompt, 4);
            long[] counts = model.graphCounts();
            assertTrue(counts[0] >= 1 && counts[1] > counts[0], counts[0] + " captures, " + counts[1] + " graph launches");
        }
    }

    @Test
    void aFailedCaptureFallsBackToDirectLaunchesWithTheSameTokens() {
        assumeTrue(HostKernels.isAvailable(), () -> "host-emulation kernels not built: " + HostKernels.unavailableReason());
        AtomicInteger captures = new AtomicInteger();
        GpuDriver refusing = new ForwardingGpuDriver(new HostGpuDriver()) {
            @Override
            public GpuGraph capture(GpuStream s, Runnable enqueue) {
                captures.incrementAndGet();
                throw new IllegalStateException("capture refused by the test driver");
            }
        };
        try (ModelFile file = ModelFile.open(SharedData.kjv("kjv-draft-f32.gguf"));
             CudaBackend direct = CudaBackend.onHost();
             CudaModel reference = (CudaModel) direct.load(file, LoadOptions.defaults());
             CudaBackend cuda = new CudaBackend(refusing);
             CudaModel model = (CudaModel) cuda.load(file, LoadOptions.defaults())) {
            reference.useGraphs(false);
            model.useGraphs(true);
            int[] prompt = ReferenceRecords.generations("kjv-draft-f32.jsonl").getFirst().promptTokens();
            assertArrayEquals(ModelRuns.greedy(reference, prompt, 6), ModelRuns.greedy(model, prompt, 6));
            assertEquals(1, captures.get(), "after one failed capture the model stops trying");
            assertEquals(0, model.graphCounts()[1], "no graph was launched");
        }
    }
}
