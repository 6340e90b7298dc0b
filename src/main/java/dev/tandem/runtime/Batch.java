package dev.tandem.runtime;

import java.util.Arrays;

/**
 * The token rows of one forward pass. Row {@code i} is token {@code tokens[i]} at position {@code positions[i]}
 * of sequence {@code sequences[i]}; several rows of one sequence are consecutive positions (a prompt chunk, or a
 * verification {@code [last, d1..dk]}); rows of several sequences may share a pass. {@code logitRows} lists, in
 * increasing order, the rows whose logits the pass must produce; results come back in that order.
 */
public record Batch(int[] tokens, int[] positions, int[] sequences, int[] logitRows) {
    public Batch {
        if (tokens.length == 0) throw new IllegalArgumentException("a batch needs at least one token");
        if (positions.length != tokens.length || sequences.length != tokens.length) {
            throw new IllegalArgumentException("tokens, positions and sequences must have the same length");
        }
        for (int i = 0; i < logitRows.length; i++) {
            if (logitRows[i] < 0 || logitRows[i] >= tokens.length || (i > 0 && logitRows[i] <= logitRows[i - 1])) {
                throw new IllegalArgumentException("logit rows must be increasing row indices below " + tokens.length + ": " + Arrays.toString(logitRows));
            }
        }
    }

    public int size() { return tokens.length; }

    /** Consecutive tokens of one sequence starting at {@code start}; logits for every row or only the last. */
    public static Batch of(int sequence, int start, int[] tokens, boolean allLogits) {
        int n = tokens.length;
        int[] pos = new int[n];
        int[] seq = new int[n];
        for (int i = 0; i < n; i++) {
            pos[i] = start + i;
            seq[i] = sequence;
        }
        int[] rows;
        if (allLogits) {
            rows = new int[n];
            for (int i = 0; i < n; i++) rows[i] = i;
        } else {
            rows = new int[] {n - 1};
        }
        return new Batch(tokens.clone(), pos, seq, rows);
    }
}
