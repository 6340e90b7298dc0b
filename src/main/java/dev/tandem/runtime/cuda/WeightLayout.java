package dev.tandem.runtime.cuda;

import dev.tandem.model.TensorType;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * How a weight matrix lies in device memory: the one definition of the layouts the kernels' formats read
 * ({@code kernels/common.cuh}). Rows are {@link #rowBytes} apart, each a multiple of 16 bytes, so every row
 * starts 16-byte aligned when the matrix does.
 *
 * <p>F32, F16, BF16, Q4_K and Q5_K rows are the file's bytes (their blocks are multiples of 16 bytes). Q8_0
 * (34-byte blocks), Q4_0 (18) and Q6_K (210) blocks are only 2-byte aligned, so their rows are repacked at upload:
 * each row's quant bytes become 16-byte aligned arrays and its scales separate arrays after them, the values
 * unchanged. Q8_0 quants stay in element order, since its matvec lanes read consecutive 16-byte spans of a row.
 * A Q6_K lane decodes one 32-element unit of a row (unit u: elements 32u..32u+31) and needs one 32-byte group of
 * an array; such arrays are stored <em>half-split</em>: of an array of G 32-byte groups, group g's first 16 bytes
 * are at 16g and its last 16 at 16G + 16g, so each of the lane's two 16-byte loads reads, across a warp, one
 * contiguous run of memory. With U = K/32 units and S = K/256 super-blocks a row is:
 *
 * <pre>
 * Q8_0: qs   K bytes, block u's 32 int8 at 32u (element order)          offset 0
 *       d    U f16, block order                                          offset K
 * Q4_0: qs   16U bytes, block u's 16 nibble bytes at 16u (ggml order)   offset 0
 *       d    U f16                                                       offset K/2
 * Q6_K: ql   K/2 bytes, half-split: super-block s's ql[128] as groups 4s..4s+3   offset 0
 *       qh   K/4 bytes, half-split: super-block s's qh[64] as groups 2s, 2s+1    offset K/2
 *       sc   K/16 int8: super-block s's scales[16] at 16s                offset 3K/4
 *       d    S f16                                                       offset 3K/4 + K/16
 * </pre>
 * each row then padded with zeros to a multiple of 16 bytes.
 */
final class WeightLayout {
    private WeightLayout() {}

    /** Whether rows of {@code type} are repacked, not copied as stored. */
    static boolean repacked(TensorType type) {
        return type == TensorType.Q8_0 || type == TensorType.Q4_0 || type == TensorType.Q6_K;
    }

    /** Bytes from one device row of {@code k} elements to the next. */
    static long rowBytes(TensorType type, long k) {
        return switch (type) {
            case Q8_0 -> align16(k + k / 32 * 2);
            case Q4_0 -> align16(k / 2 + k / 32 * 2);
            case Q6_K -> align16(k / 2 + k / 4 + k / 16 + k / 256 * 2);
            default -> type.bytesFor(k);
        };
    }

    /**
     * Writes stored row {@code src} (its file bytes, {@code k} elements) as a device row at {@code dst}, which must
     * hold {@link #rowBytes} bytes; padding becomes zeros.
     */
    static void repackRow(TensorType type, MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset, int k) {
        if (!repacked(type)) {
            MemorySegment.copy(src, srcOffset, dst, dstOffset, type.bytesFor(k));
            return;
        }
        dst.asSlice(dstOffset, rowBytes(type, k)).fill((byte) 0);
        switch (type) {
            case Q8_0 -> {
                int units = k / 32;
                for (int u = 0; u < units; u++) {
                    long block = srcOffset + 34L * u;
                    copy16(src, block + 2, dst, dstOffset + 32L * u);
                    copy16(src, block + 18, dst, dstOffset + 32L * u + 16);
                    copyHalf(src, block, dst, dstOffset + k + 2L * u);
                }
            }
            case Q4_0 -> {
                int units = k / 32;
                for (int u = 0; u < units; u++) {
                    long block = srcOffset + 18L * u;
                    copy16(src, block + 2, dst, dstOffset + 16L * u);
                    copyHalf(src, block, dst, dstOffset + k / 2 + 2L * u);
                }
            }
            case Q6_K -> {
                int superBlocks = k / 256;
                long ql = dstOffset, qh = ql + k / 2, sc = qh + k / 4, d = sc + k / 16;
                for (int s = 0; s < superBlocks; s++) {
                    long block = srcOffset + 210L * s;
                    for (int g = 0; g < 4; g++) halfSplitGroup(src, block + 32L * g, dst, ql, 4 * superBlocks, 4 * s + g);
                    for (int g = 0; g < 2; g++) halfSplitGroup(src, block + 128 + 32L * g, dst, qh, 2 * superBlocks, 2 * s + g);
                    copy16(src, block + 192, dst, sc + 16L * s);
                    copyHalf(src, block + 208, dst, d + 2L * s);
                }
            }
            default -> throw new AssertionError(type);
        }
    }

    /** The 32 bytes at {@code src} as group {@code g} of a half-split array of {@code groups} groups at {@code array}. */
    private static void halfSplitGroup(MemorySegment src, long srcOffset, MemorySegment dst, long array, int groups, int g) {
        copy16(src, srcOffset, dst, array + 16L * g);
        copy16(src, srcOffset + 16, dst, array + 16L * groups + 16L * g);
    }

    // Two 8-byte moves: a model's worth of 16-byte MemorySegment.copy calls costs seconds at load.
    private static void copy16(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset) {
        dst.set(ValueLayout.JAVA_LONG_UNALIGNED, dstOffset, src.get(ValueLayout.JAVA_LONG_UNALIGNED, srcOffset));
        dst.set(ValueLayout.JAVA_LONG_UNALIGNED, dstOffset + 8, src.get(ValueLayout.JAVA_LONG_UNALIGNED, srcOffset + 8));
    }

    private static void copyHalf(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset) {
        dst.set(ValueLayout.JAVA_SHORT_UNALIGNED, dstOffset, src.get(ValueLayout.JAVA_SHORT_UNALIGNED, srcOffset));
    }

    private static long align16(long bytes) { return (bytes + 15) & ~15L; }
}
