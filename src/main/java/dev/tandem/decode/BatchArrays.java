package dev.tandem.decode;

import dev.tandem.runtime.Batch;

/**
 * Batches of one sequence's consecutive tokens built from arrays made once per generation, so the per-token
 * loop only creates the small {@link Batch} record. A batch's arrays are rewritten by the next call of the same
 * length: callers wait for a pass before building the next one.
 */
final class BatchArrays {
    private final int sequence;
    private final int[][] tokens, positions, sequences, allRows, lastRow;

    BatchArrays(int sequence, int maxRows) {
        this.sequence = sequence;
        tokens = new int[maxRows + 1][];
        positions = new int[maxRows + 1][];
        sequences = new int[maxRows + 1][];
        allRows = new int[maxRows + 1][];
        lastRow = new int[maxRows + 1][];
        for (int n = 1; n <= maxRows; n++) {
            tokens[n] = new int[n];
            positions[n] = new int[n];
            sequences[n] = new int[n];
            allRows[n] = new int[n];
            lastRow[n] = new int[] {n - 1};
            for (int i = 0; i < n; i++) {
                sequences[n][i] = sequence;
                allRows[n][i] = i;
            }
        }
    }

    /** Tokens {@code src[from..from+n)} at positions {@code start..start+n)}, logits for all rows or the last. */
    Batch of(int[] src, int from, int n, int start, boolean allLogits) {
        if (n >= tokens.length) {
            int[] chunk = new int[n];
            System.arraycopy(src, from, chunk, 0, n);
            return Batch.of(sequence, start, chunk, allLogits);
        }
        int[] t = tokens[n], p = positions[n];
        System.arraycopy(src, from, t, 0, n);
        for (int i = 0; i < n; i++) p[i] = start + i;
        return new Batch(t, p, sequences[n], allLogits ? allRows[n] : lastRow[n]);
    }
}
