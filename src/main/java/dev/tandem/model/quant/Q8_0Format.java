package dev.tandem.model.quant;

import java.lang.foreign.MemorySegment;

/** block_q8_0: f16 scale d, then 32 signed bytes; element i = d * qs[i]. 34 bytes per 32 elements. */
public final class Q8_0Format implements WeightFormat {
    public static final Q8_0Format INSTANCE = new Q8_0Format();
    public static final int BLOCK = 32;
    public static final int BLOCK_BYTES = 34;

    private Q8_0Format() {}

    @Override
    public void dequantize(MemorySegment src, long byteOffset, float[] dst, int dstOffset, int count) {
        for (int b = 0; b < count / BLOCK; b++) {
            long block = byteOffset + (long) b * BLOCK_BYTES;
            float d = HalfFloat.toFloat(src.get(LittleEndian.SHORT, block));
            for (int i = 0; i < BLOCK; i++) {
                dst[dstOffset + b * BLOCK + i] = d * src.get(LittleEndian.BYTE, block + 2 + i);
            }
        }
    }

    /** As quantize_row_q8_0_ref: d = amax/127 (stored as f16), q = roundf(x / d) with the unrounded d. */
    @Override
    public void quantize(float[] src, int srcOffset, int count, MemorySegment dst, long byteOffset) {
        for (int b = 0; b < count / BLOCK; b++) {
            int x = srcOffset + b * BLOCK;
            long block = byteOffset + (long) b * BLOCK_BYTES;
            float amax = 0;
            for (int i = 0; i < BLOCK; i++) amax = Math.max(amax, Math.abs(src[x + i]));
            float d = amax / 127;
            float id = d != 0 ? 1.0f / d : 0.0f;
            dst.set(LittleEndian.SHORT, block, HalfFloat.fromFloat(d));
            for (int i = 0; i < BLOCK; i++) {
                dst.set(LittleEndian.BYTE, block + 2 + i, (byte) roundHalfAway(src[x + i] * id));
            }
        }
    }

    /** C's roundf: halves away from zero (done in double so that 0.49999997f does not round up). */
    static int roundHalfAway(float v) {
        return (int) Math.copySign(Math.floor(Math.abs((double) v) + 0.5), v);
    }
}
