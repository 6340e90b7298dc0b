package dev.tandem.runtime.cuda;

import dev.tandem.model.ModelConfig;
import dev.tandem.runtime.Batch;
import dev.tandem.runtime.PagedKvCache;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * How a batch runs: in chunks of at most {@code maxBatchRows} rows through all layers, each chunk in runs of rows
 * of one sequence (attention and the K/V append launch per run), and the ints the pass stages for the device in
 * one upload: token ids [n], positions [n], then each run's block table (blocks up to its last position).
 *
 * @param stagedInts how many ints that upload holds
 * @param maxChunks  the most attention chunks any run splits its context into (sizes the attention partials)
 */
record PassLayout(List<Chunk> chunks, List<int[]> runTables, int stagedInts, int maxChunks) {
    /** Rows {@code [row, row + rows)} of a chunk (chunk-relative) that belong to one sequence. */
    record Run(int row, int rows, int tableOffset, int maxChunks) {}

    /** Batch rows {@code [start, start + rows)}; its result rows are {@code [firstLogit, endLogit)}. */
    record Chunk(int start, int rows, List<Run> runs, int firstLogit, int endLogit) {}

    /** The layout of {@code batch}; throws, before anything is staged, for a token, position or block the pass cannot use. */
    static PassLayout of(Batch batch, PagedKvCache tables, ModelConfig c, int maxRows) {
        int n = batch.size(), bs = tables.blockSize();
        int[] tokens = batch.tokens(), positions = batch.positions(), sequences = batch.sequences(), logitRows = batch.logitRows();
        List<Chunk> chunks = new ArrayList<>();
        List<int[]> runTables = new ArrayList<>();
        int tableInts = 0, maxChunks = 1, nextLogit = 0;
        for (int start = 0; start < n; start += maxRows) {
            int rows = Math.min(maxRows, n - start);
            List<Run> runs = new ArrayList<>();
            for (int r = 0; r < rows; ) {
                int seq = sequences[start + r], end = r, last = 0;
                while (end < rows && sequences[start + end] == seq) {
                    int i = start + end, token = tokens[i], pos = positions[i];
                    if (token < 0 || token >= c.vocabularySize()) {
                        throw new IllegalArgumentException("token id " + token + " at row " + i + " is outside the vocabulary (size " + c.vocabularySize() + ")");
                    }
                    if (pos < 0 || pos >= c.contextLength()) {
                        throw new IllegalArgumentException("position " + pos + " at row " + i + " is outside the context length " + c.contextLength());
                    }
                    tables.block(seq, pos);  // throws unless reserved
                    last = Math.max(last, pos);
                    end++;
                }
                int blocks = last / bs + 1;
                int[] table = tables.blockTable(seq, null);
                int chunkCount = LaunchGeometry.attentionChunkCapacity(last + 1);
                runs.add(new Run(r, end - r, 2 * n + tableInts, chunkCount));
                runTables.add(Arrays.copyOf(table, blocks));
                tableInts += blocks;
                maxChunks = Math.max(maxChunks, chunkCount);
                r = end;
            }
            int first = nextLogit;
            while (nextLogit < logitRows.length && logitRows[nextLogit] < start + rows) nextLogit++;
            chunks.add(new Chunk(start, rows, runs, first, nextLogit));
        }
        return new PassLayout(chunks, runTables, 2 * n + tableInts, maxChunks);
    }

    /** Throws unless {@code batch} is a verification: one sequence, logits for every row. */
    static void requireVerification(Batch batch, String what) {
        int n = batch.size();
        int[] rows = batch.logitRows();
        boolean everyRow = rows.length == n;
        for (int i = 0; everyRow && i < n; i++) everyRow = rows[i] == i;
        if (!everyRow) throw new IllegalArgumentException(what + " verification needs logits for every row [last, d1 .. dk], got rows " + Arrays.toString(rows));
        for (int i = 1; i < n; i++) {
            if (batch.sequences()[i] != batch.sequences()[0]) {
                throw new IllegalArgumentException(what + " verification runs one sequence; row " + i + " is sequence " + batch.sequences()[i]
                        + ", row 0 sequence " + batch.sequences()[0]);
            }
        }
    }

    /** Writes {@code batch}'s staged ints into {@code host}. */
    void write(Batch batch, MemorySegment host) {
        int n = batch.size();
        MemorySegment.copy(batch.tokens(), 0, host, ValueLayout.JAVA_INT, 0, n);
        MemorySegment.copy(batch.positions(), 0, host, ValueLayout.JAVA_INT, (long) n * Integer.BYTES, n);
        long at = 2L * n * Integer.BYTES;
        for (int[] t : runTables) {
            MemorySegment.copy(t, 0, host, ValueLayout.JAVA_INT, at, t.length);
            at += (long) t.length * Integer.BYTES;
        }
    }
}
