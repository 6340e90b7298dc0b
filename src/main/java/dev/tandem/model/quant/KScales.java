package dev.tandem.model.quant;

import java.lang.foreign.MemorySegment;

/**
 * The 12-byte packing of eight 6-bit (scale, min) pairs used by Q4_K and Q5_K (ggml's get_scale_min_k4).
 * Pairs 0..3: scale in the low 6 bits of byte j, min in the low 6 bits of byte j+4. Pairs 4..7: low 4 bits
 * of scale and min in the two nibbles of byte j+4, their top 2 bits in the top 2 bits of bytes j-4 (scale)
 * and j (min).
 */
public final class KScales {
    public static final int BYTES = 12;

    private KScales() {}

    /** Scale of sub-block j (0..7), from the 12 bytes at {@code at}. */
    public static int scale(MemorySegment block, long at, int j) {
        if (j < 4) return u8(block, at + j) & 63;
        return (u8(block, at + j + 4) & 0x0F) | ((u8(block, at + j - 4) >>> 6) << 4);
    }

    /** Min of sub-block j (0..7), from the 12 bytes at {@code at}. */
    public static int min(MemorySegment block, long at, int j) {
        if (j < 4) return u8(block, at + j + 4) & 63;
        return (u8(block, at + j + 4) >>> 4) | ((u8(block, at + j) >>> 6) << 4);
    }

    /** Packs scales[0..8) and mins[0..8) (each 0..63) into 12 bytes at {@code at}. */
    public static void pack(int[] scales, int[] mins, MemorySegment block, long at) {
        byte[] q = new byte[BYTES];
        for (int j = 0; j < 8; j++) {
            int ls = scales[j], lm = mins[j];
            if (j < 4) {
                q[j] |= (byte) (ls & 63);
                q[j + 4] |= (byte) (lm & 63);
            } else {
                q[j + 4] = (byte) ((ls & 0x0F) | (lm & 0x0F) << 4);
                q[j - 4] |= (byte) ((ls >>> 4) << 6);
                q[j] |= (byte) ((lm >>> 4) << 6);
            }
        }
        MemorySegment.copy(q, 0, block, LittleEndian.BYTE, at, BYTES);
    }

    private static int u8(MemorySegment s, long at) { return s.get(LittleEndian.BYTE, at) & 0xFF; }
}
