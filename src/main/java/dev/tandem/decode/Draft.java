package dev.tandem.decode;

/**
 * A drafter's proposal, in buffers reused from step to step: {@code size()} tokens and, for each, the
 * distribution q it was drawn from (one-hot for greedy and deterministic drafters). Speculative sampling needs
 * q to accept or replace each token losslessly.
 */
public final class Draft {
    private final int[] tokens;
    private final Distribution[] q;
    private int size;
    /** Kept rows [keptRows, keptRows + capacity) of the draft model's device this draft may fill, or -1. */
    private int keptRows = -1;
    /** The distributions of this fill are in the kept rows, not in {@link #q}. */
    private boolean onDevice;

    public Draft(int capacity, int vocabularySize) {
        tokens = new int[capacity];
        q = new Distribution[capacity];
        for (int i = 0; i < capacity; i++) q[i] = new Distribution(vocabularySize);
    }

    public int capacity() { return tokens.length; }

    public int size() { return size; }

    public int token(int i) { return tokens[i]; }

    public Distribution q(int i) { return q[i]; }

    public void clear() {
        size = 0;
        onDevice = false;
    }

    /**
     * Lets a drafter whose model samples on its device keep q_i there, as kept row {@code firstRow + i} (see
     * {@link dev.tandem.runtime.DeviceSampling#sampleDraftAsync}), for a verifier that reads them in place; -1 takes
     * the permission back. The caller has the rows kept ({@link dev.tandem.runtime.DeviceSampling#keepDraftRows}) and
     * keeps the rows of drafts in use at once apart.
     */
    public void keepOnDevice(int firstRow) { keptRows = firstRow; }

    /** The first kept row this draft may fill, or -1 (q stays on the host). */
    public int keptRows() { return keptRows; }

    /** Whether this fill's distributions are kept rows on the draft model's device ({@link #q} is not filled). */
    public boolean onDevice() { return onDevice; }

    /** Marks this fill's distributions as kept on the device, from {@link #keptRows()} on. */
    void markOnDevice() {
        if (keptRows < 0) throw new IllegalStateException("this draft may not keep its distributions on a device");
        onDevice = true;
    }

    /** The distribution slot of the next token, to fill before {@link #push}. */
    public Distribution next() { return q[size]; }

    /** Appends {@code token}, whose distribution was written into {@link #next()}. */
    public void push(int token) { tokens[size++] = token; }

    /** q_0 .. q_{k-1} as dense rows of {@code vocabularySize} probabilities in {@code rows} (for a device). */
    public void denseRows(int k, float[] rows, int vocabularySize) {
        for (int i = 0; i < k; i++) {
            Distribution d = q[i];
            int row = i * vocabularySize;
            java.util.Arrays.fill(rows, row, row + vocabularySize, 0f);
            for (int j = 0; j < d.size(); j++) rows[row + d.token(j)] = d.p(d.token(j));
        }
    }

    /** Appends a token proposed with certainty (q one-hot). */
    public void pushCertain(int token) {
        q[size].setOneHot(token);
        tokens[size++] = token;
    }
}
