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

    public Draft(int capacity, int vocabularySize) {
        tokens = new int[capacity];
        q = new Distribution[capacity];
        for (int i = 0; i < capacity; i++) q[i] = new Distribution(vocabularySize);
    }

    public int capacity() { return tokens.length; }

    public int size() { return size; }

    public int token(int i) { return tokens[i]; }

    public Distribution q(int i) { return q[i]; }

    public void clear() { size = 0; }

    /** The distribution slot of the next token, to fill before {@link #push}. */
    public Distribution next() { return q[size]; }

    /** Appends {@code token}, whose distribution was written into {@link #next()}. */
    public void push(int token) { tokens[size++] = token; }

    /** Appends a token proposed with certainty (q one-hot). */
    public void pushCertain(int token) {
        q[size].setOneHot(token);
        tokens[size++] = token;
    }
}
