package dev.tandem.runtime;

/**
 * Logits of the rows a pass was asked for, in {@link Batch#logitRows()} order. The values live in buffers the
 * model reuses: they are valid until the model's next pass, so copy what must outlive it.
 */
public interface ForwardResult {
    /** Number of logit rows. */
    int rows();

    int vocabularySize();

    /** Logit {@code token} of result row {@code row}. */
    float logit(int row, int token);

    /** Copies result row {@code row} into {@code dst[0..vocabularySize())}. */
    void copyLogits(int row, float[] dst);

    /** The highest-scoring token of result row {@code row}; ties go to the lower id. */
    default int argmax(int row) {
        int best = 0;
        float bestValue = logit(row, 0);
        for (int t = 1, n = vocabularySize(); t < n; t++) {
            float v = logit(row, t);
            if (v > bestValue) {
                bestValue = v;
                best = t;
            }
        }
        return best;
    }

    /**
     * The probability softmax gives result row {@code row}'s top token: a greedy draft's confidence, which p-min
     * tests. A GPU computes it beside the argmax, so that no logits cross to the host for it.
     */
    default float topProbability(int row) {
        float[] logits = new float[vocabularySize()];
        copyLogits(row, logits);
        return topProbability(logits, 0, logits.length);
    }

    /** The probability softmax(logits[from, from + n)) gives its top token. */
    static float topProbability(float[] logits, int from, int n) {
        float max = Float.NEGATIVE_INFINITY;
        for (int t = from; t < from + n; t++) max = Math.max(max, logits[t]);
        double sum = 0;
        for (int t = from; t < from + n; t++) sum += Math.exp(logits[t] - max);
        return (float) (1.0 / sum);
    }
}
