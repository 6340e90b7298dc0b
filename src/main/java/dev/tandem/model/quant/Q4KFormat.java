package dev.tandem.model.quant;

import java.lang.foreign.MemorySegment;

/**
 * block_q4_K, 144 bytes per 256 elements: f16 d, f16 dmin, 12 bytes of 6-bit scales/mins ({@link KScales}),
 * 128 bytes of nibbles. Elements come in 4 groups of 64 sharing 32 bytes: the low nibbles are sub-block 2p,
 * the high nibbles sub-block 2p+1. element = d*sc[j]*q - dmin*m[j].
 */
public final class Q4KFormat implements WeightFormat {
    public static final Q4KFormat INSTANCE = new Q4KFormat();
    public static final int BLOCK = 256;
    public static final int BLOCK_BYTES = 144;
    public static final int SCALES = 4;
    public static final int QS = 16;

    private Q4KFormat() {}

    @Override
    public void dequantize(MemorySegment src, long byteOffset, float[] dst, int dstOffset, int count) {
        for (int b = 0; b < count / BLOCK; b++) {
            long block = byteOffset + (long) b * BLOCK_BYTES;
            float d = HalfFloat.toFloat(src.get(LittleEndian.SHORT, block));
            float dmin = HalfFloat.toFloat(src.get(LittleEndian.SHORT, block + 2));
            int y = dstOffset + b * BLOCK;
            for (int p = 0; p < 4; p++) {
                float d1 = d * KScales.scale(src, block + SCALES, 2 * p), m1 = dmin * KScales.min(src, block + SCALES, 2 * p);
                float d2 = d * KScales.scale(src, block + SCALES, 2 * p + 1), m2 = dmin * KScales.min(src, block + SCALES, 2 * p + 1);
                for (int l = 0; l < 32; l++) {
                    int q = src.get(LittleEndian.BYTE, block + QS + 32 * p + l) & 0xFF;
                    dst[y + 64 * p + l] = d1 * (q & 0x0F) - m1;
                    dst[y + 64 * p + 32 + l] = d2 * (q >>> 4) - m2;
                }
            }
        }
    }

    @Override
    public void quantize(float[] src, int srcOffset, int count, MemorySegment dst, long byteOffset) {
        int[] scales = new int[8], mins = new int[8], levels = new int[BLOCK];
        for (int b = 0; b < count / BLOCK; b++) {
            long block = byteOffset + (long) b * BLOCK_BYTES;
            short[] dd = KQuantizer.fitAffine(src, srcOffset + b * BLOCK, 15, scales, mins, levels);
            dst.set(LittleEndian.SHORT, block, dd[0]);
            dst.set(LittleEndian.SHORT, block + 2, dd[1]);
            KScales.pack(scales, mins, dst, block + SCALES);
            for (int p = 0; p < 4; p++) {
                for (int l = 0; l < 32; l++) {
                    int q = levels[64 * p + l] | levels[64 * p + 32 + l] << 4;
                    dst.set(LittleEndian.BYTE, block + QS + 32 * p + l, (byte) q);
                }
            }
        }
    }
}
