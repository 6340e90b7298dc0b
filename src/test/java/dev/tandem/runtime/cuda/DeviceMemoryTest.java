package dev.tandem.runtime.cuda;

import dev.tandem.model.ModelConfig;
import dev.tandem.model.ModelFile;
import dev.tandem.model.Tensor;
import dev.tandem.runtime.KvType;
import dev.tandem.runtime.LoadOptions;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.runtime.PagedKvCache;
import dev.tandem.testing.SharedData;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Device memory is checked before anything is uploaded: a model (or K/V cache) that does not fit in the free memory
 * the device reports fails with both numbers and leaves nothing allocated. Runs on the host emulation posing as a
 * GPU with chosen facts ({@link FactsDriver}).
 */
class DeviceMemoryTest {
    static final long MIB = 1L << 20;
    static ModelFile file;

    @BeforeAll
    static void open() { file = ModelFile.open(SharedData.kjv("kjv-main-q8_0.gguf")); }

    @AfterAll
    static void close() { if (file != null) file.close(); }

    static LoadOptions options(long kvPositions) { return new LoadOptions(2, KvType.F32, 32).withKvPositions(kvPositions); }

    static DeviceFacts gpuWithFree(long free) { return new DeviceFacts("Test GPU", 8, 6, free, 8L << 30, 13000); }

    @Test
    void thePlanCountsEveryWeightTheAnnouncedKvPositionsAndScratch() {
        DeviceMemoryPlan plan = DeviceMemoryPlan.of(file, options(1000), false);
        long stored = 0;
        int tensors = 0;
        for (Tensor t : file.tensors()) {
            stored += t.dimensions() >= 2 ? t.byteSize() : t.elements() * Float.BYTES;  // vectors go up as floats
            tensors++;
        }
        assertTrue(plan.weights() >= stored && plan.weights() <= stored + tensors * 2 * MIB, plan.weights() + " vs " + stored);
        ModelConfig c = file.config();
        assertEquals(1000L * 2 * c.layers() * c.kvDim() * Float.BYTES, plan.kvCache(), "K and V, every layer, F32");
        assertEquals(plan.weights() + plan.kvCache() + plan.scratch(), plan.total());
        assertTrue(plan.scratch() >= DeviceMemoryPlan.RESERVE);
        assertEquals(0, DeviceMemoryPlan.of(file, options(0), false).kvCache(), "positions not known: checked when the cache is made");
    }

    @Test
    void aModelThatDoesNotFitFailsNamingBothNumbersBeforeAllocatingAnything() {
        assumeTrue(HostKernels.isAvailable(), () -> "host-emulation kernels not built: " + HostKernels.unavailableReason());
        DeviceMemoryPlan plan = DeviceMemoryPlan.of(file, options(2048), false);
        FactsDriver driver = new FactsDriver(new HostGpuDriver(), gpuWithFree(plan.total() - 1));
        try (CudaBackend gpu = new CudaBackend(driver)) {
            var e = assertThrows(DeviceMemoryException.class, () -> gpu.load(file, options(2048)));
            assertEquals("model 'kjv-main-q8_0' needs " + DeviceRequirements.size(plan.total()) + " of device memory (" + plan.describe()
                    + ") but the GPU 'Test GPU' has " + DeviceRequirements.size(plan.total() - 1) + " free of 8.00 GiB", e.getMessage());
            assertEquals(0, driver.allocations(), "nothing uploaded, nothing to leak");
        }
    }

    @Test
    void aModelThatFitsLoadsAndItsKvCacheIsCheckedWhenMade() {
        assumeTrue(HostKernels.isAvailable(), () -> "host-emulation kernels not built: " + HostKernels.unavailableReason());
        DeviceMemoryPlan plan = DeviceMemoryPlan.of(file, options(0), false);
        FactsDriver driver = new FactsDriver(new HostGpuDriver(), gpuWithFree(plan.total()));
        try (CudaBackend gpu = new CudaBackend(driver); LoadedModel model = gpu.load(file, options(0))) {
            long uploaded = driver.allocations();
            assertTrue(uploaded > 0);
            PagedKvCache tables = new PagedKvCache(16, 64);
            long kvBytes = 64L * 16 * model.kvBytesPerPosition();
            driver.facts(gpuWithFree(kvBytes - 1));
            var e = assertThrows(DeviceMemoryException.class, () -> model.createKvCache(tables));
            assertEquals("the K/V cache of model 'kjv-main-q8_0' needs " + DeviceRequirements.size(kvBytes) + " of device memory (K/V cache "
                    + DeviceRequirements.size(kvBytes) + " for 1024 positions) but the GPU 'Test GPU' has " + DeviceRequirements.size(kvBytes - 1)
                    + " free of 8.00 GiB", e.getMessage());
            assertEquals(uploaded, driver.allocations(), "no K/V buffer allocated");
            driver.facts(gpuWithFree(kvBytes));
            model.createKvCache(tables).close();
        }
    }

    @Test
    void theHostEmulationHasNoDeviceMemoryToRunOutOf() {
        assumeTrue(HostKernels.isAvailable(), () -> "host-emulation kernels not built: " + HostKernels.unavailableReason());
        try (HostGpuDriver host = new HostGpuDriver()) {
            assertNull(host.facts());
        }
    }
}
