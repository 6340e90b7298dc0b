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

    /**
     * The seed of a draft model's draws for verification seed {@code seed}: a draft token and the verification
     * that judges it must not share a uniform (the rejection test would then depend on how the token was drawn),
     * and streams 0 and 1 are the verification's, so drafts draw on stream 1 of a seed mixed apart.
     */
    public static long draftSeed(long seed) { return mix64(seed ^ 0x6a09e667f3bcc909L); }

    /** A draw in [0, 1) with 24 bits (exact as a float). */
    public static float uniform(long seed, int position, int stream) {
        long h = mix64(seed ^ mix64(((position & 0xffffffffL) << 1) | stream));
        return (float) (h >>> 40) * (1.0f / 16777216.0f);
    }
}
