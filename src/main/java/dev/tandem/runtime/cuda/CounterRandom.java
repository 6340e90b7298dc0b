package dev.tandem.runtime.cuda;

/**
 * The device's counter-based randoms ({@code counter_uniform} in {@code kernels/sample.cu}): a uniform draw is a
 * pure function of (seed, position, stream), so the host emulation, a GPU and this class give the same numbers,
 * and a verification's draws do not depend on what ran before it. Stream 0 decides acceptance at a position,
 * stream 1 draws the token there.
 */
public final class CounterRandom {
    private CounterRandom() {}

    /** splitmix64's finaliser. */
    static long mix64(long x) {
        x += 0x9e3779b97f4a7c15L;
        x = (x ^ (x >>> 30)) * 0xbf58476d1ce4e5b9L;
        x = (x ^ (x >>> 27)) * 0x94d049bb133111ebL;
        return x ^ (x >>> 31);
    }

    /** A draw in [0, 1) with 24 bits (exact as a float). */
    public static float uniform(long seed, int position, int stream) {
        long h = mix64(seed ^ mix64(((position & 0xffffffffL) << 1) | stream));
        return (float) (h >>> 40) * (1.0f / 16777216.0f);
    }
}
