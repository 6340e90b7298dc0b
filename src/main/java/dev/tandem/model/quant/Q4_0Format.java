package dev.tandem.model.quant;

import java.lang.foreign.MemorySegment;

/**
 * block_q4_0: f16 scale d, then 16 bytes of nibbles. Byte j holds element j in its low nibble and element
 * j+16 in its high nibble; element = d * (nibble - 8). 18 bytes per 32 elements.
 */
public final class Q4_0Format implements WeightFormat {
    public static final Q4_0Format INSTANCE = new Q4_0Format();
    public static final int BLOCK = 32;
    public static final int BLOCK_BYTES = 18;

    private Q4_0Format() {}

    @Override
    public void dequantize(MemorySegment src, long byteOffset, float[] dst, int dstOffset, int count) {
        for (int b = 0; b < count / BLOCK; b++) {
            long block = byteOffset + (long) b * BLOCK_BYTES;
            float d = HalfFloat.toFloat(src.get(LittleEndian.SHORT, block));
            int y = dstOffset + b * BLOCK;
            for (int j = 0; j < 16; j++) {
                int q = src.get(LittleEndian.BYTE, block + 2 + j) & 0xFF;
                dst[y + j] = ((q & 0x0F) - 8) * d;
                dst[y + j + 16] = ((q >>> 4) - 8) * d;
            }
        }
    }

    /**
     * As quantize_row_q4_0_ref: d = max / -8 where max is the element of largest magnitude (so it maps to
     * nibble 0), nibble = min(15, trunc(x/d + 8.5)).
     */
    @Override
    public void quantize(float[] src, int srcOffset, int count, MemorySegment dst, long byteOffset) {
        for (int b = 0; b < count / BLOCK; b++) {
            int x = srcOffset + b * BLOCK;
            long block = byteOffset + (long) b * BLOCK_BYTES;
            float amax = 0, max = 0;
            for (int i = 0; i < BLOCK; i++) {
                float v = src[x + i];
                if (amax < Math.abs(v)) {
                    amax = Math.abs(v);
                    max = v;
                }
            }
            float d = max / -8;
            float id = d != 0 ? 1.0f / d : 0.0f;
            dst.set(LittleEndian.SHORT, block, HalfFloat.fromFloat(d));
            for (int j = 0; j < 16; j++) {
                int lo = Math.min(15, (int) (src[x + j] * id + 8.5f));
                int hi = Math.min(15, (int) (src[x + j + 16] * id + 8.5f));
                dst.set(LittleEndian.BYTE, block + 2 + j, (byte) (lo | hi << 4));
            }
        }
    }
}
