package dev.tandem.forge;

import java.nio.charset.StandardCharsets;

/**
 * Deterministic random numbers addressed by (seed, tensor name, row): any row of any tensor can be drawn on any
 * thread, in any order, and always gets the same values. This is what makes forging parallel yet
 * byte-reproducible, and what lets the same weights be written in another element type.
 *
 * <p>Values are uniform with mean 0 and variance 1 (uniform on [-√3, √3)): cheap, bounded, and for a weight
 * matrix as good as Gaussian noise. Each row is a SplitMix64 stream seeded from a hash of the three keys.
 */
final class RandomRows {
    private static final long GOLDEN = 0x9E3779B97F4A7C15L;
    private static final float SQRT3 = (float) Math.sqrt(3);
    /** 2·√3 / 2²⁴: maps a 24-bit integer onto [0, 2√3). */
    private static final float STEP = 2 * SQRT3 / (1 << 24);

    private RandomRows() {}

    /** The stream key of a tensor: the seed mixed with a 64-bit FNV-1a hash of its name's UTF-8 bytes. */
    static long tensorKey(long seed, String tensor) {
        long h = 0xcbf29ce484222325L;
        for (byte b : tensor.getBytes(StandardCharsets.UTF_8)) {
            h ^= b & 0xff;
            h *= 0x100000001b3L;
        }
        return mix(seed ^ mix(h));
    }

    /** dst[off + i] = mean + std · u_i for i < n, u_i the unit-variance uniform draws of row {@code row}. */
    static void fill(long tensorKey, long row, float[] dst, int off, int n, float mean, float std) {
        long state = mix(tensorKey + row * GOLDEN);
        float a = std * STEP;
        float b = mean - std * SQRT3;
        int i = 0;
        // Two 24-bit draws per 64-bit output; invariant: dst[off .. off+i) is filled.
        for (; i + 1 < n; i += 2) {
            long z = mix(state += GOLDEN);
            dst[off + i] = b + a * (int) (z >>> 40);
            dst[off + i + 1] = b + a * (int) ((z >>> 16) & 0xFFFFFF);
        }
        if (i < n) dst[off + i] = b + a * (int) (mix(state + GOLDEN) >>> 40);
    }

    /** One uniform long for non-weight uses (the vocabulary generator). */
    static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
