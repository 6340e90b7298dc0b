package dev.tandem.runtime.cuda;

import dev.tandem.runtime.Batch;
import dev.tandem.runtime.ForwardResult;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.runtime.PagedKvCache;

/** Small drivers of a loaded model for the CUDA backend tests: greedy decoding and logit snapshots. */
final class ModelRuns {
    private ModelRuns() {}

    /** {@code count} greedy tokens after {@code prompt}, in a fresh cache. */
    static int[] greedy(LoadedModel model, int[] prompt, int count) {
        PagedKvCache tables = new PagedKvCache(16, (prompt.length + count + 15) / 16 + 1);
        try (KvCache kv = model.createKvCache(tables)) {
            int seq = tables.createSequence();
            tables.reserve(seq, prompt.length);
            int next = model.forward(Batch.of(seq, 0, prompt, false), kv).argmax(0);
            int[] out = new int[count];
            for (int i = 0; i < count; i++) {
                out[i] = next;
                if (i == count - 1) break;
                int pos = prompt.length + i;
                tables.reserve(seq, pos + 1);
                next = model.forward(Batch.of(seq, pos, new int[] {next}, false), kv).argmax(0);
            }
            return out;
        }
    }

    /** Copies of every result row's logits. */
    static float[][] logits(ForwardResult r) {
        float[][] out = new float[r.rows()][r.vocabularySize()];
        for (int i = 0; i < r.rows(); i++) r.copyLogits(i, out[i]);
        return out;
    }

    static float maxAbs(float[] v) {
        float m = 0;
        for (float x : v) m = Math.max(m, Math.abs(x));
        return m;
    }

    static float maxAbsDifference(float[] a, float[] b) {
        float m = 0;
        for (int i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
        return m;
    }
}
