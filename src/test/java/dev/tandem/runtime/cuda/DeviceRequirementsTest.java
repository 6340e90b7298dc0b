package dev.tandem.runtime.cuda;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What a device must offer, decided from the facts it reports: compute capability, driver, free memory. */
class DeviceRequirementsTest {
    static final long GIB = 1L << 30, MIB = 1L << 20;

    static DeviceFacts gpu(String name, int major, int minor, long free, long total) { return new DeviceFacts(name, major, minor, free, total, 13000); }

    @Test
    void gpusBelowComputeCapability8AreRefusedByNameCapabilityAndMinimum() {
        String t4 = DeviceRequirements.unsupportedGpu(gpu("Tesla T4", 7, 5, -1, 16 * GIB));
        assertEquals("the GPU 'Tesla T4' has compute capability 7.5; Tandem's kernels need 8.0 or newer (Ampere, e.g. A100 or RTX 30xx, and later)", t4);
        String v100 = DeviceRequirements.unsupportedGpu(gpu("Tesla V100-SXM2-16GB", 7, 0, -1, 16 * GIB));
        assertTrue(v100.contains("'Tesla V100-SXM2-16GB'") && v100.contains(" 7.0;") && v100.contains("8.0 or newer"), v100);
    }

    @Test
    void ampereAndLaterAreAccepted() {
        int[][] capabilities = {{8, 0}, {8, 6}, {8, 7}, {8, 9}, {9, 0}, {10, 0}, {12, 0}};
        for (int[] cc : capabilities) assertNull(DeviceRequirements.unsupportedGpu(gpu("gpu", cc[0], cc[1], -1, GIB)), cc[0] + "." + cc[1]);
    }

    @Test
    void aDriverOlderThanTheToolkitThatBuiltTheCubinsIsRefused() {
        String old = DeviceRequirements.driverTooOld(12040, new int[] {13, 0});
        assertEquals("the NVIDIA driver supports CUDA 12.4, but the kernels were built with CUDA 13.0 and need a driver for CUDA 13.0 or newer", old);
        assertNull(DeviceRequirements.driverTooOld(13000, new int[] {13, 0}));
        assertNull(DeviceRequirements.driverTooOld(12060, new int[] {12, 6}), "minor versions of one major load each other's cubins");
        assertNull(DeviceRequirements.driverTooOld(13000, new int[] {12, 6}));
    }

    @Test
    void tooLittleFreeMemoryNamesWhatIsNeededAndWhatIsFree() {
        DeviceMemoryPlan plan = new DeviceMemoryPlan(6 * GIB, GIB, 8192, 512 * MIB);
        String m = DeviceRequirements.tooLittleMemory(gpu("NVIDIA GeForce RTX 3070", 8, 6, 5 * GIB, 8 * GIB), "model 'llama-8b'", plan);
        assertEquals("model 'llama-8b' needs 7.50 GiB of device memory (weights 6.00 GiB + K/V cache 1.00 GiB for 8192 positions"
                + " + scratch 512.0 MiB) but the GPU 'NVIDIA GeForce RTX 3070' has 5.00 GiB free of 8.00 GiB", m);
    }

    @Test
    void enoughMemoryOrUnknownFreeMemoryPasses() {
        DeviceMemoryPlan plan = new DeviceMemoryPlan(GIB, 0, 0, MIB);
        assertNull(DeviceRequirements.tooLittleMemory(gpu("g", 9, 0, plan.total(), 2 * GIB), "m", plan), "exactly enough is enough");
        assertTrue(DeviceRequirements.tooLittleMemory(gpu("g", 9, 0, plan.total() - 1, 2 * GIB), "m", plan) != null);
        assertNull(DeviceRequirements.tooLittleMemory(gpu("g", 9, 0, -1, 2 * GIB), "m", plan), "free memory not asked yet");
        assertNull(DeviceRequirements.tooLittleMemory(null, "m", plan), "no device memory (host emulation)");
    }

    @Test
    void sizesReadAsPeopleWriteThem() {
        assertEquals("100 B", DeviceRequirements.size(100));
        assertEquals("1.5 KiB", DeviceRequirements.size(1536));
        assertEquals("1.5 MiB", DeviceRequirements.size(3 * MIB / 2));
        assertEquals("1.00 GiB", DeviceRequirements.size(GIB));
        assertEquals("139.80 GiB", DeviceRequirements.size((long) (139.8 * GIB)));
    }
}
