package dev.tandem.runtime.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.model.TensorType;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

import org.junit.jupiter.api.Test;

/** The device layout of weight rows ({@link WeightLayout}) and its upload ({@link DeviceUpload#matrix}). */
class WeightLayoutTest {
    private static final TensorType[] KERNEL_TYPES = {TensorType.F32, TensorType.F16, TensorType.BF16, TensorType.Q8_0,
            TensorType.Q4_0, TensorType.Q4_K, TensorType.Q5_K, TensorType.Q6_K};

    /** Every device row is a whole number of 16-byte runs, at most 15 bytes longer than the stored row. */
    @Test
    void rowsAreStoredRowsPaddedToSixteenBytes() {
        for (TensorType type : KERNEL_TYPES) {
            for (int k : new int[] {256, 768, 2304, 4096, 5632}) {
                long device = WeightLayout.rowBytes(type, k), stored = type.bytesFor(k);
                assertEquals(0, device % 16, type + " k=" + k);
                assertTrue(device >= stored && device - stored < 16, type + " k=" + k + ": " + device + " bytes for " + stored);
                assertEquals(WeightLayout.repacked(type), type == TensorType.Q8_0 || type == TensorType.Q4_0 || type == TensorType.Q6_K);
            }
        }
        assertEquals(960, WeightLayout.rowBytes(TensorType.Q8_0, 896));  // 896 quants + 28 scales of 2 bytes, padded
    }

    /**
     * A Q8_0 row of two blocks by hand: the quants in element order (block 0's 32 at 0, block 1's at 32), the scales
     * follow at 64 and 66, zeros pad to 80.
     */
    @Test
    void q8_0RowIsQuantsInElementOrderThenScales() {
        byte[] stored = new byte[68];
        for (int i = 0; i < stored.length; i++) stored[i] = (byte) (i + 1);
        byte[] device = repack(TensorType.Q8_0, stored, 64);
        assertEquals(80, device.length);
        for (int u = 0; u < 2; u++) {
            for (int i = 0; i < 32; i++) assertEquals(stored[34 * u + 2 + i], device[32 * u + i], "block " + u + " quant " + i);
            assertEquals(stored[34 * u], device[64 + 2 * u]);
            assertEquals(stored[34 * u + 1], device[65 + 2 * u]);
        }
        for (int i = 68; i < 80; i++) assertEquals(0, device[i], "padding byte " + i);
    }

    /** Q4_0 keeps each block's 16 quant bytes whole at 16u; Q6_K's scales are contiguous, unit u's two at 2u. */
    @Test
    void q4_0AndQ6_KPlaceQuantsAndScalesAsDocumented() {
        Random random = new Random(5);
        byte[] q4 = new byte[18 * 3];
        random.nextBytes(q4);
        byte[] d4 = repack(TensorType.Q4_0, q4, 96);
        for (int u = 0; u < 3; u++) {
            for (int i = 0; i < 16; i++) assertEquals(q4[18 * u + 2 + i], d4[16 * u + i]);
            assertEquals(q4[18 * u], d4[48 + 2 * u]);
        }
        byte[] q6 = new byte[210 * 2];
        random.nextBytes(q6);
        byte[] d6 = repack(TensorType.Q6_K, q6, 512);
        int scales = 256 + 128, d = scales + 32;
        for (int s = 0; s < 2; s++) {
            for (int i = 0; i < 16; i++) assertEquals(q6[210 * s + 192 + i], d6[scales + 16 * s + i], "super-block " + s + " scale " + i);
            assertEquals(q6[210 * s + 208], d6[d + 2 * s]);
            // ql group 4s + 1 (bytes 32..63 of the super-block's ql): first half at 16 (4s + 1), second at 16 (8 + 4s + 1)
            for (int i = 0; i < 16; i++) {
                assertEquals(q6[210 * s + 32 + i], d6[16 * (4 * s + 1) + i]);
                assertEquals(q6[210 * s + 48 + i], d6[16 * (8 + 4 * s + 1) + i]);
            }
            // qh group 2s + 1 (bytes 32..63 of qh), in the qh array at 256
            for (int i = 0; i < 16; i++) {
                assertEquals(q6[210 * s + 128 + 32 + i], d6[256 + 16 * (2 * s + 1) + i]);
                assertEquals(q6[210 * s + 128 + 48 + i], d6[256 + 16 * (4 + 2 * s + 1) + i]);
            }
        }
    }

    /** A matrix larger than the upload's staging buffer goes up in pieces of whole rows; each row is its repacking. */
    @Test
    void uploadInPiecesGivesEveryRowItsRepacking() {
        int k = 4096, rows = 2600;  // 2600 device rows of 3360 bytes: more than the 8 MiB staging buffer
        byte[] stored = new byte[Math.toIntExact(TensorType.Q6_K.bytesFor((long) rows * k))];
        new Random(6).nextBytes(stored);
        long deviceRow = WeightLayout.rowBytes(TensorType.Q6_K, k);
        assertTrue(rows * deviceRow > 8L << 20);
        HostGpuDriver driver = new HostGpuDriver();
        try (GpuStream stream = driver.createStream(); DeviceUpload upload = new DeviceUpload(driver, stream);
             DeviceBuffer matrix = upload.matrix(TensorType.Q6_K, MemorySegment.ofArray(stored), rows, k)) {
            MemorySegment uploaded = HostGpuDriver.segment(matrix);
            assertEquals(rows * deviceRow, uploaded.byteSize());
            byte[] expected = new byte[(int) deviceRow];
            for (int r : new int[] {0, 1, 2496, 2497, rows - 1}) {  // 2496 rows fit a piece: both sides of the seam
                WeightLayout.repackRow(TensorType.Q6_K, MemorySegment.ofArray(stored), r * TensorType.Q6_K.bytesFor(k),
                        MemorySegment.ofArray(expected), 0, k);
                assertArrayEquals(expected, uploaded.asSlice(r * deviceRow, deviceRow).toArray(ValueLayout.JAVA_BYTE), "row " + r);
            }
        }
    }

    private static byte[] repack(TensorType type, byte[] stored, int k) {
        byte[] device = new byte[(int) WeightLayout.rowBytes(type, k)];
        WeightLayout.repackRow(type, MemorySegment.ofArray(stored), 0, MemorySegment.ofArray(device), 0, k);
        return device;
    }
}
