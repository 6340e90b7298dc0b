package dev.tandem.model.quant;

import java.lang.foreign.MemorySegment;

/**
 * block_q6_K, 210 bytes per 256 elements: ql[128] (low 4 bits), qh[64] (high 2 bits), 16 signed 8-bit
 * scales (one per 16 elements), f16 d last. element = d * sc[k/16] * (q - 32). Each half of 128 elements
 * uses ql[64], qh[32] and 8 scales: for l < 32, ql[l] holds elements l (low nibble) and l+64 (high),
 * ql[l+32] holds l+32 and l+96, and qh[l] gives bits 4-5 of l, l+32, l+64, l+96 in bit pairs 0,2,4,6.
 */
public final class Q6KFormat implements WeightFormat {
    public static final Q6KFormat INSTANCE = new Q6KFormat();
    public static final int BLOCK = 256;
    public static final int BLOCK_BYTES = 210;
    public static final int QL = 0;
    public static final int QH = 128;
    public static final int SCALES = 192;
    public static final int D = 208;

    private Q6KFormat() {}

    @Override
    public void dequantize(MemorySegment src, long byteOffset, float[] dst, int dstOffset, int count) {
        for (int b = 0; b < count / BLOCK; b++) {
            long block = byteOffset + (long) b * BLOCK_BYTES;
            float d = HalfFloat.toFloat(src.get(LittleEndian.SHORT, block + D));
            for (int n = 0; n < 2; n++) {
                int y = dstOffset + b * BLOCK + 128 * n;
                long ql = block + QL + 64 * n, qh = block + QH + 32 * n, sc = block + SCALES + 8 * n;
                for (int l = 0; l < 32; l++) {
                    int is = l / 16;
                    int lo = u8(src, ql + l), lo2 = u8(src, ql + l + 32), h = u8(src, qh + l);
                    dst[y + l] = d * src.get(LittleEndian.BYTE, sc + is) * (((lo & 0x0F) | (h & 3) << 4) - 32);
                    dst[y + l + 32] = d * src.get(LittleEndian.BYTE, sc + is + 2) * (((lo2 & 0x0F) | ((h >>> 2) & 3) << 4) - 32);
                    dst[y + l + 64] = d * src.get(LittleEndian.BYTE, sc + is + 4) * (((lo >>> 4) | ((h >>> 4) & 3) << 4) - 32);
                    dst[y + l + 96] = d * src.get(LittleEndian.BYTE, sc + is + 6) * (((lo2 >>> 4) | ((h >>> 6) & 3) << 4) - 32);
                }
            }
        }
    }

    /**
     * Per 16 elements: the element of largest magnitude maps to -32 (as ggml's make_qx_quants without the
     * refinement), the 16 group scales are then quantised to int8 against d = max scale / -128.
     */
    @Override
    public void quantize(float[] src, int srcOffset, int count, MemorySegment dst, long byteOffset) {
        float[] groupScale = new float[16];
        int[] levels = new int[BLOCK];
        for (int b = 0; b < count / BLOCK; b++) {
            int x = srcOffset + b * BLOCK;
            long block = byteOffset + (long) b * BLOCK_BYTES;
            float maxScale = 0, amaxScale = 0;
            for (int g = 0; g < 16; g++) {
                float amax = 0, max = 0;
                for (int i = 0; i < 16; i++) {
                    float v = src[x + 16 * g + i];
                    if (Math.abs(v) > amax) {
                        amax = Math.abs(v);
                        max = v;
                    }
                }
                groupScale[g] = amax > 0 ? max / -32 : 0;
                if (Math.abs(groupScale[g]) > amaxScale) {
                    amaxScale = Math.abs(groupScale[g]);
                    maxScale = groupScale[g];
                }
            }
            float iscale = maxScale != 0 ? -128 / maxScale : 0;
            short d16 = HalfFloat.fromFloat(iscale != 0 ? 1 / iscale : 0);
            float d = HalfFloat.toFloat(d16);
            dst.set(LittleEndian.SHORT, block + D, d16);
            for (int g = 0; g < 16; g++) {
                // rounded away from zero, so the group's largest element stays on the grid instead of clamping
                float v = iscale * groupScale[g];
                int sc = (int) Math.clamp(Math.copySign(Math.ceil(Math.abs(v)), v), -128, 127);
                dst.set(LittleEndian.BYTE, block + SCALES + g, (byte) sc);
                float dl = d * sc;
                for (int i = 0; i < 16; i++) {
                    int at = 16 * g + i;
                    levels[at] = dl != 0 ? Math.clamp((long) Math.rint(src[x + at] / dl), -32, 31) + 32 : 32;
                }
            }
            for (int n = 0; n < 2; n++) {
                int y = 128 * n;
                for (int l = 0; l < 32; l++) {
                    int q1 = levels[y + l], q2 = levels[y + l + 32], q3 = levels[y + l + 64], q4 = levels[y + l + 96];
                    dst.set(LittleEndian.BYTE, block + QL + 64 * n + l, (byte) ((q1 & 0x0F) | (q3 & 0x0F) << 4));
                    dst.set(LittleEndian.BYTE, block + QL + 64 * n + l + 32, (byte) ((q2 & 0x0F) | (q4 & 0x0F) << 4));
                    dst.set(LittleEndian.BYTE, block + QH + 32 * n + l, (byte) ((q1 >>> 4) | (q2 >>> 4) << 2 | (q3 >>> 4) << 4 | (q4 >>> 4) << 6));
                }
            }
        }
    }

    private static int u8(MemorySegment s, long at) { return s.get(LittleEndian.BYTE, at) & 0xFF; }
}
