package dev.tandem.bench;

import dev.tandem.runtime.Batch;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.runtime.PagedKvCache;

import java.util.Arrays;

/**
 * The price of a verification pass: the time of a (k+1)-row forward pass of a model over its one-row pass, with
 * logits for every row as a verification asks. A measurement of the backend's kernels, not a generation, so it runs
 * passes on a loaded model directly: on one scratch sequence after a prompt, all row counts interleaved, medians.
 */
public final class PassCostProbe {
    private PassCostProbe() {}

    /**
     * Median time of a (k+1)-row pass over the median one-row pass, k = 1..maxK, after {@code context} is in the
     * cache; {@code samples} of each row count, interleaved, after one round of warm-up.
     */
    public static double[] relativeCosts(LoadedModel model, int[] context, int maxK, int samples) {
        int rowsMax = maxK + 1;
        PagedKvCache tables = new PagedKvCache(16, (context.length + rowsMax + 15) / 16 + 1);
        long[][] nanos = new long[rowsMax + 1][samples];
        try (KvCache kv = model.createKvCache(tables)) {
            int seq = tables.createSequence();
            tables.reserve(seq, context.length);
            model.forward(Batch.of(seq, 0, context, false), kv);
            int[] tokens = new int[rowsMax];
            for (int i = 0; i < rowsMax; i++) tokens[i] = context[i % context.length];
            for (int sample = -1; sample < samples; sample++) {          // sample -1 warms up
                for (int rows = 1; rows <= rowsMax; rows++) {
                    Batch b = Batch.of(seq, context.length, Arrays.copyOf(tokens, rows), true);
                    tables.reserve(seq, context.length + rows);
                    long t0 = System.nanoTime();
                    model.forward(b, kv);
                    long dt = System.nanoTime() - t0;
                    tables.truncate(seq, context.length);
                    if (sample >= 0) nanos[rows][sample] = dt;
                }
            }
            tables.release(seq);
        }
        double one = Median.of(nanos[1]);
        double[] out = new double[maxK];
        for (int k = 1; k <= maxK; k++) out[k - 1] = Median.of(nanos[k + 1]) / one;
        return out;
    }
}
