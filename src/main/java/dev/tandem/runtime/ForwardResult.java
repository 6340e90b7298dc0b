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
}
