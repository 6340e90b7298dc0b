package dev.tandem.model.quant;

import java.lang.foreign.MemorySegment;

/**
 * block_q5_K, 176 bytes per 256 elements: f16 d, f16 dmin, 12 bytes of scales/mins ({@link KScales}),
 * qh[32], qs[128]. As Q4_K, plus a fifth bit: for group p (64 elements), element l of sub-block 2p takes
 * bit 2p of qh[l] as its bit 4, element l of sub-block 2p+1 takes bit 2p+1.
 */
public final class Q5KFormat implements WeightFormat {
    public static final Q5KFormat INSTANCE = new Q5KFormat();
    public static final int BLOCK = 256;
    public static final int BLOCK_BYTES = 176;
    public static final int SCALES = 4;
    public static final int QH = 16;
    public static final int QS = 48;

    private Q5KFormat() {}

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
                    int h = src.get(LittleEndian.BYTE, block + QH + l) & 0xFF;
                    dst[y + 64 * p + l] = d1 * ((q & 0x0F) | ((h >>> (2 * p)) & 1) << 4) - m1;
                    dst[y + 64 * p + 32 + l] = d2 * ((q >>> 4) | ((h >>> (2 * p + 1)) & 1) << 4) - m2;
                }
            }
        }
    }

    @Override
    public void quantize(float[] src, int srcOffset, int count, MemorySegment dst, long byteOffset) {
        int[] scales = new int[8], mins = new int[8], levels = new int[BLOCK];
        for (int b = 0; b < count / BLOCK; b++) {
            long block = byteOffset + (long) b * BLOCK_BYTES;
            short[] dd = KQuantizer.fitAffine(src, srcOffset + b * BLOCK, 31, scales, mins, levels);
            dst.set(LittleEndian.SHORT, block, dd[0]);
            dst.set(LittleEndian.SHORT, block + 2, dd[1]);
            KScales.pack(scales, mins, dst, block + SCALES);
            int[] qh = new int[32];
            for (int p = 0; p < 4; p++) {
                for (int l = 0; l < 32; l++) {
                    int lo = levels[64 * p + l], hi = levels[64 * p + 32 + l];
                    dst.set(LittleEndian.BYTE, block + QS + 32 * p + l, (byte) ((lo & 0x0F) | (hi & 0x0F) << 4));
                    qh[l] |= (lo >>> 4) << (2 * p) | (hi >>> 4) << (2 * p + 1);
                }
            }
            for (int l = 0; l < 32; l++) dst.set(LittleEndian.BYTE, block + QH + l, (byte) qh[l]);
        }
    }
}
