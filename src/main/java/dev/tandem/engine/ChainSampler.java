package dev.tandem.engine;

import dev.tandem.runtime.ForwardResult;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * llama.cpp's default sampler chain: repetition penalty, top-k, top-p, min-p, temperature, then a draw from
 * the sequence's own seeded random stream (temperature 0: the best remaining candidate). Candidates are
 * ordered by logit, ties to the lower id, so the same logits always give the same choice.
 */
final class ChainSampler implements TokenSampler {
    private final SamplingSettings settings;
    private final float[] logits;
    /** Candidate keys: inverted sortable logit bits in the high half, token id in the low half (see {@link #key}). */
    private final long[] keys;
    private final double[] probabilities;
    private final int[] recent;
    private int recentCount;
    private int recentNext;
    private final SplittableRandom random;

    ChainSampler(SamplingSettings settings, int vocabularySize) {
        this.settings = settings;
        this.logits = new float[vocabularySize];
        this.keys = new long[vocabularySize];
        this.probabilities = new double[vocabularySize];
        this.recent = new int[Math.max(settings.repeatLastN(), 1)];
        this.random = new SplittableRandom(settings.seed());
    }

    @Override
    public void accept(int token) {
        if (settings.repeatLastN() == 0) return;
        recent[recentNext] = token;
        recentNext = (recentNext + 1) % recent.length;
        recentCount = Math.min(recentCount + 1, recent.length);
    }

    @Override
    public int sample(ForwardResult result, int row) {
        int n = Math.min(result.vocabularySize(), logits.length);
        result.copyLogits(row, logits);
        applyPenalty();
        for (int t = 0; t < n; t++) keys[t] = key(logits[t], t);
        Arrays.sort(keys, 0, n);                  // best first; equal logits: lower id first
        if (settings.isGreedy()) return (int) keys[0];
        int kept = settings.topK() > 0 ? Math.min(settings.topK(), n) : n;
        kept = softmax(kept, 1.0);
        double cumulative = 0;                    // top-p: the smallest prefix whose mass reaches topP
        for (int i = 0; i < kept; i++) {
            cumulative += probabilities[i];
            if (cumulative >= settings.topP()) {
                kept = i + 1;
                break;
            }
        }
        double floor = settings.minP() * probabilities[0];
        for (int i = 1; i < kept; i++) {
            if (probabilities[i] < floor) {
                kept = i;
                break;
            }
        }
        kept = softmax(kept, settings.temperature());
        double u = random.nextDouble(), sum = 0;
        for (int i = 0; i < kept; i++) {
            sum += probabilities[i];
            if (u < sum) return (int) keys[i];
        }
        return (int) keys[kept - 1];
    }

    /** llama.cpp's penalty: each distinct recent token's logit is divided (positive) or multiplied (negative). */
    private void applyPenalty() {
        float penalty = (float) settings.repetitionPenalty();
        if (penalty == 1 || recentCount == 0) return;
        int[] seen = Arrays.copyOf(recent, recentCount);
        Arrays.sort(seen);
        for (int i = 0; i < seen.length; i++) {
            if (i > 0 && seen[i] == seen[i - 1]) continue;
            int t = seen[i];
            if (t < 0 || t >= logits.length) continue;
            logits[t] = logits[t] > 0 ? logits[t] / penalty : logits[t] * penalty;
        }
    }

    /** Fills probabilities[0..kept) from the sorted candidates' logits over {@code temperature}; returns kept. */
    private int softmax(int kept, double temperature) {
        double max = logits[(int) keys[0]] / temperature, total = 0;
        for (int i = 0; i < kept; i++) {
            double p = Math.exp(logits[(int) keys[i]] / temperature - max);
            probabilities[i] = p;
            total += p;
        }
        for (int i = 0; i < kept; i++) probabilities[i] /= total;
        return kept;
    }

    /** Ascending order of keys = descending logits, then ascending ids. */
    private static long key(float logit, int token) {
        int bits = Float.floatToIntBits(logit);
        int ordered = bits ^ ((bits >> 31) & 0x7fffffff);     // signed-int order equals float order
        return ((long) ~ordered << 32) | token;
    }
}
