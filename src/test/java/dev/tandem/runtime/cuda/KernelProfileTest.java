package dev.tandem.runtime.cuda;

import dev.tandem.model.TensorType;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The kernel-profiling driver: launches counted per kernel with the bytes their arguments say they move, beside the copy bandwidth. */
class KernelProfileTest {
    @Test
    void bytesMovedFollowTheStoredFormats() {
        // A Q8_0 matrix of 8 rows of 64 (2 blocks of 34 bytes a row), 3 activation rows: weights + x + y.
        assertEquals(8 * 68 + 3 * 64 * 4 + 3 * 8 * 4, KernelProfile.bytesMoved(Kernel.matvec(TensorType.Q8_0, 3), LaunchGeometry.matvec(TensorType.Q8_0, 64, 8, 3),
                new Object[] {null, null, null, null, null, null, null, null, null, null, 64, 5, 2, 1, 3, null, null, null, 0f, null}));
        // Gate and up: two matrices of 8 rows.
        assertEquals(2 * 8 * 68 + 3 * 64 * 4 + 3 * 8 * 4, KernelProfile.bytesMoved(Kernel.matvecSwiglu(TensorType.Q8_0, 3),
                LaunchGeometry.matvecGated(TensorType.Q8_0, 64, 8, 3), new Object[] {null, null, null, null, 64, 8, 3}));
        assertEquals(12L * 1000, KernelProfile.bytesMoved(Kernel.SWIGLU, LaunchGeometry.elementwise(1000), new Object[] {null, null, null, 1000}));
        assertEquals(0, KernelProfile.bytesMoved(Kernel.ATTENTION_PARTIAL, LaunchGeometry.attentionPartial(2, 2, 64), new Object[17]),
                "attention's traffic depends on positions only the device sees");
    }

    @Test
    void reportListsEachKernelWithItsBandwidth() {
        assumeTrue(HostKernels.isAvailable(), () -> "host-emulation kernels not built: " + HostKernels.unavailableReason());
        KernelProfile profile = new KernelProfile(new HostGpuDriver());
        int n = 4096;
        try (GpuStream s = profile.createStream(); DeviceBuffer a = profile.allocate(n * 4L); DeviceBuffer b = profile.allocate(n * 4L);
             DeviceBuffer out = profile.allocate(n * 4L)) {
            for (int i = 0; i < 3; i++) profile.launch(Kernel.SWIGLU, LaunchGeometry.elementwise(n), s, a, b, out, n);
            profile.synchronize(s);
            String table = profile.report();
            System.out.print(table);
            assertTrue(table.startsWith("device copy bandwidth: "), table);
            String row = table.lines().filter(l -> l.startsWith("swiglu ")).findFirst().orElseThrow(() -> new AssertionError(table));
            String[] cells = row.trim().split("\\s+");
            assertEquals("3", cells[1], row);
            assertEquals(Long.toString(12L * n), cells[4], row);
            assertTrue(Double.parseDouble(cells[5]) > 0, row);
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }
}
