package dev.tandem.decode;

import java.util.SplittableRandom;

/**
 * A probability distribution over token ids that the sampler chain left in play: a dense probability per id
 * (zero outside the support) and the support in draw order. Reused from token to token: {@link #clear} only
 * zeroes the previous support, so a vocabulary of 128k ids costs nothing per token when few are kept.
 */
public final class Distribution {
    private final float[] probability;
    private final int[] support;
    private int size;

    public Distribution(int vocabularySize) {
        probability = new float[vocabularySize];
        support = new int[vocabularySize];
    }

    public int vocabularySize() { return probability.length; }

    /** Probability of {@code token} (0 when it was filtered out). */
    public float p(int token) { return probability[token]; }

    /** Number of ids with a non-zero probability. */
    public int size() { return size; }

    /** The {@code i}-th id of the support in draw order (for a sorted chain: most probable first). */
    public int token(int i) { return support[i]; }

    void clear() {
        for (int i = 0; i < size; i++) probability[support[i]] = 0f;
        size = 0;
    }

    /** Appends {@code token} with weight {@code p} (weights are normalised by {@link #normalise}). */
    void add(int token, float p) {
        probability[token] = p;
        support[size++] = token;
    }

    void normalise() {
        double sum = 0;
        for (int i = 0; i < size; i++) sum += probability[support[i]];
        float inv = (float) (1.0 / sum);
        for (int i = 0; i < size; i++) probability[support[i]] *= inv;
    }

    /** All mass on {@code token}: what a greedy choice or a deterministic drafter proposes. */
    public void setOneHot(int token) {
        clear();
        add(token, 1f);
    }

    /** The most probable id of the support, ties to the lower id. */
    public int top() {
        int best = support[0];
        for (int i = 1; i < size; i++) {
            int t = support[i];
            if (probability[t] > probability[best] || probability[t] == probability[best] && t < best) best = t;
        }
        return best;
    }

    /** Draws an id: walks the support in order until the cumulative mass passes {@code u} in [0, 1). */
    public int sample(SplittableRandom random) {
        double u = random.nextDouble();
        double sum = 0;
        for (int i = 0; i < size; i++) sum += probability[support[i]];
        double target = u * sum, cumulative = 0;
        for (int i = 0; i < size; i++) {
            cumulative += probability[support[i]];
            if (target < cumulative) return support[i];
        }
        return support[size - 1];   // rounding: u*sum reached the total
    }

    /**
     * Sets this to norm(max(0, p − q)), the distribution a rejected draft token is replaced from. Only ids in
     * p's support can have mass. When nothing is left (p and q equal up to rounding) it is p itself.
     */
    void setResidual(Distribution p, Distribution q) {
        clear();
        for (int i = 0; i < p.size; i++) {
            int t = p.support[i];
            float r = p.probability[t] - q.probability[t];
            if (r > 0) add(t, r);
        }
        if (size == 0) {
            for (int i = 0; i < p.size; i++) add(p.support[i], p.probability[p.support[i]]);
        }
        normalise();
    }
}
