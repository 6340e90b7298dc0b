package dev.tandem.decode;

import dev.tandem.runtime.NonFiniteOutputException;

import java.util.Arrays;

/**
 * The sampler chain of {@link SamplerSettings} turned into a {@link Distribution}: repetition penalty, top-k,
 * top-p, min-p, temperature. Speculative sampling applies the very same chain to the main and the draft model's
 * logits. Holds scratch buffers sized for one vocabulary, so one instance serves one caller at a time and
 * allocates nothing per token.
 *
 * <p>Ordering, where it matters, is by logit descending and then by id ascending: tied tokens keep the lower id
 * first (the bitwise contract's rule 3). Top-p and min-p use the probabilities before temperature, as llama.cpp
 * does.
 */
public final class Sampler {
    private final SamplerSettings s;
    private final int vocabularySize;
    private final float[] penalised;
    /** Sort keys: high 32 bits order logits descending, low 32 bits are the id (ascending on ties). */
    private final long[] keys;
    private final float[] weights;
    /** penaltyMark[t] == penaltyStamp: t was already penalised for the current row (each seen token counts once). */
    private final int[] penaltyMark;
    private int penaltyStamp;

    public Sampler(SamplerSettings settings, int vocabularySize) {
        this.s = settings;
        this.vocabularySize = vocabularySize;
        boolean penalty = settings.penalisesRepetition();
        this.penalised = penalty ? new float[vocabularySize] : null;
        this.penaltyMark = penalty ? new int[vocabularySize] : null;
        boolean filters = !settings.isGreedy();
        this.keys = filters ? new long[vocabularySize] : null;
        this.weights = filters ? new float[vocabularySize] : null;
    }

    public SamplerSettings settings() { return s; }

    /**
     * Fills {@code out} from {@code logits[0..n)} (ids at or above {@code n} get no mass: that is how draft
     * logits beyond the shared vocabulary are masked). {@code context[0..contextLength)} are the tokens before
     * the one being chosen, for the repetition penalty. Greedy settings give a one-hot distribution.
     */
    public void fill(float[] logits, int n, int[] context, int contextLength, Distribution out) {
        if (n > vocabularySize) throw new IllegalArgumentException("logit row of " + n + " ids exceeds the sampler's vocabulary " + vocabularySize);
        requireFinite(logits, n);
        float[] l = applyPenalty(logits, n, context, contextLength);
        if (s.isGreedy()) {
            out.setOneHot(argmax(l, n));
            return;
        }
        out.clear();
        int count = selectCandidates(l, n);
        // Softmax of the (penalised) logits over the candidates; keys[0..count) hold them, sorted when it matters.
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < count; i++) max = Math.max(max, l[id(keys[i])]);
        double sum = 0;
        for (int i = 0; i < count; i++) {
            float w = (float) Math.exp(l[id(keys[i])] - max);
            weights[i] = w;
            sum += w;
        }
        if (s.topP() < 1f) {
            // Keys are sorted here: keep the shortest prefix whose mass reaches top-p (at least one token).
            double target = s.topP() * sum, cumulative = 0;
            int keep = count;
            for (int i = 0; i < count; i++) {
                cumulative += weights[i];
                if (cumulative >= target) {
                    keep = i + 1;
                    break;
                }
            }
            count = keep;
        }
        if (s.minP() > 0f) {
            // weights are relative to the top logit (its weight is 1), so the threshold is min-p itself.
            int kept = 0;
            for (int i = 0; i < count; i++) {
                if (weights[i] >= s.minP()) {
                    keys[kept] = keys[i];
                    weights[kept++] = weights[i];
                }
            }
            count = kept;
        }
        float invT = 1f / s.temperature();
        for (int i = 0; i < count; i++) {
            int t = id(keys[i]);
            out.add(t, (float) Math.exp((l[t] - max) * invT));
        }
        out.normalise();
    }

    /**
     * A row with NaN or +infinity (or nothing above −infinity) has no distribution: softmax turns it into NaN
     * weights that every filter drops. Whatever backend produced it, the failure is the model's, named here
     * rather than as an empty candidate list further down.
     */
    private static void requireFinite(float[] logits, int n) {
        float top = Float.NEGATIVE_INFINITY;
        for (int t = 0; t < n; t++) {
            float v = logits[t];
            if (Float.isNaN(v) || v == Float.POSITIVE_INFINITY) {
                throw new NonFiniteOutputException("the model's output logits hold " + v + " (token " + t
                        + "): its weights or hyperparameters hold non-finite values");
            }
            top = Math.max(top, v);
        }
        if (n > 0 && top == Float.NEGATIVE_INFINITY) {
            throw new NonFiniteOutputException("the model's output logits are all -Infinity: its weights or hyperparameters hold non-finite values");
        }
    }

    /** Highest logit of {@code logits[0..n)}, ties to the lower id. */
    public static int argmax(float[] logits, int n) {
        int best = 0;
        float bestValue = logits[0];
        for (int t = 1; t < n; t++) {
            if (logits[t] > bestValue) {
                bestValue = logits[t];
                best = t;
            }
        }
        return best;
    }

    private float[] applyPenalty(float[] logits, int n, int[] context, int contextLength) {
        if (penalised == null) return logits;
        System.arraycopy(logits, 0, penalised, 0, n);
        if (++penaltyStamp == 0) {       // wrapped: forget old marks
            Arrays.fill(penaltyMark, 0);
            penaltyStamp = 1;
        }
        float penalty = s.repetitionPenalty();
        int from = s.repeatLastN() < 0 ? 0 : Math.max(0, contextLength - s.repeatLastN());
        for (int i = from; i < contextLength; i++) {
            int t = context[i];
            if (t < 0 || t >= n || penaltyMark[t] == penaltyStamp) continue;
            penaltyMark[t] = penaltyStamp;
            penalised[t] = penalised[t] > 0 ? penalised[t] / penalty : penalised[t] * penalty;
        }
        return penalised;
    }

    /** Puts the candidate keys in keys[0..count) and returns count: sorted when top-k or top-p needs an order. */
    private int selectCandidates(float[] l, int n) {
        int k = s.topK() > 0 && s.topK() < n ? s.topK() : n;
        if (k < n) {
            // Keep the k smallest keys (best tokens) in a max-heap at keys[0..k), then sort them.
            for (int t = 0; t < k; t++) keys[t] = key(l[t], t);
            for (int i = k / 2 - 1; i >= 0; i--) siftDown(i, k);
            for (int t = k; t < n; t++) {
                long key = key(l[t], t);
                if (key < keys[0]) {
                    keys[0] = key;
                    siftDown(0, k);
                }
            }
            Arrays.sort(keys, 0, k);
            return k;
        }
        for (int t = 0; t < n; t++) keys[t] = key(l[t], t);
        if (s.topP() < 1f) Arrays.sort(keys, 0, n);
        return n;
    }

    private void siftDown(int i, int size) {
        long v = keys[i];
        while (true) {
            int child = 2 * i + 1;
            if (child >= size) break;
            if (child + 1 < size && keys[child + 1] > keys[child]) child++;
            if (keys[child] <= v) break;
            keys[i] = keys[child];
            i = child;
        }
        keys[i] = v;
    }

    /** A long that orders by logit descending, then id ascending. */
    static long key(float logit, int id) {
        int bits = Float.floatToIntBits(logit);
        int ordered = bits ^ ((bits >> 31) & 0x7fffffff);   // signed-int order equals float order
        return ((long) ~ordered << 32) | id;
    }

    private static int id(long key) { return (int) key; }
}
