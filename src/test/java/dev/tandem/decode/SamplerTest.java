package dev.tandem.decode;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** Each filter of the chain on hand-made logits; probabilities worked out by hand from softmax. */
class SamplerTest {
    static final int[] NO_CONTEXT = {};

    static Distribution fill(SamplerSettings s, float[] logits, int[] context) {
        Distribution d = new Distribution(logits.length);
        new Sampler(s, logits.length).fill(logits, logits.length, context, context.length, d);
        return d;
    }

    static int[] support(Distribution d) {
        int[] out = new int[d.size()];
        for (int i = 0; i < out.length; i++) out[i] = d.token(i);
        return out;
    }

    @Test
    void greedyTakesTheHighestLogitAndTheLowerIdOnTies() {
        Distribution d = fill(SamplerSettings.greedy(), new float[] {1f, 3f, 2f, 3f}, NO_CONTEXT);
        assertArrayEquals(new int[] {1}, support(d));
        assertEquals(1f, d.p(1));
    }

    @Test
    void topKKeepsTheKHighestWithTiesToTheLowerId() {
        // logits 2 at ids 1, 3, 4: with k = 3 the kept set is {0 (logit 5), 1, 3}, in that order.
        Distribution d = fill(SamplerSettings.sampling(1f, 0).withTopK(3), new float[] {5f, 2f, 0f, 2f, 2f}, NO_CONTEXT);
        assertArrayEquals(new int[] {0, 1, 3}, support(d));
        double z = Math.exp(5) + 2 * Math.exp(2);
        assertEquals(Math.exp(5) / z, d.p(0), 1e-6);
        assertEquals(Math.exp(2) / z, d.p(3), 1e-6);
        assertEquals(0f, d.p(4));
    }

    @Test
    void topPKeepsTheShortestPrefixReachingP() {
        // probabilities 0.5, 0.25, 0.125, 0.125 (log-weights): top-p 0.7 keeps 0.5 + 0.25 = 0.75 >= 0.7.
        float ln2 = (float) Math.log(2);
        float[] logits = {2 * ln2, 3 * ln2, ln2, ln2};      // ids 1, 0, then 2 and 3 tied
        Distribution d = fill(SamplerSettings.sampling(1f, 0).withTopP(0.7f), logits, NO_CONTEXT);
        assertArrayEquals(new int[] {1, 0}, support(d));
        assertEquals(2.0 / 3, d.p(1), 1e-6);
        // top-p 0.8 needs a third token: of the tie 2/3, the lower id.
        assertArrayEquals(new int[] {1, 0, 2}, support(fill(SamplerSettings.sampling(1f, 0).withTopP(0.8f), logits, NO_CONTEXT)));
    }

    @Test
    void minPDropsTokensBelowAFractionOfTheTopProbability() {
        float ln2 = (float) Math.log(2);
        // relative probabilities 1, 1/2, 1/4, 1/8: min-p 0.25 keeps the first three.
        Distribution d = fill(SamplerSettings.sampling(1f, 0).withMinP(0.25f), new float[] {0, -ln2, -2 * ln2, -3 * ln2}, NO_CONTEXT);
        assertArrayEquals(new int[] {0, 1, 2}, support(d));
        assertEquals(4.0 / 7, d.p(0), 1e-6);
    }

    @Test
    void temperatureSharpensAfterTheFilters() {
        float ln2 = (float) Math.log(2);
        // weights 1 : 1/2 at T=1 become 1 : 1/4 at T=0.5.
        Distribution d = fill(SamplerSettings.sampling(0.5f, 0), new float[] {0, -ln2}, NO_CONTEXT);
        assertEquals(0.8, d.p(0), 1e-6);
        assertEquals(0.2, d.p(1), 1e-6);
    }

    @Test
    void repetitionPenaltyDividesPositiveAndMultipliesNegativeLogitsOfSeenTokensOnce() {
        // penalty 2 on ids 0 (logit 4 -> 2) and 2 (logit -1 -> -2), seen in the last 3 context tokens; id 1
        // was seen only before the window. Greedy then picks id 1 (logit 3).
        SamplerSettings s = SamplerSettings.greedy().withRepetitionPenalty(2f, 3);
        assertArrayEquals(new int[] {1}, support(fill(s, new float[] {4f, 3f, -1f}, new int[] {1, 0, 2, 0})));
        // Without the penalty window reaching id 0, it wins.
        assertArrayEquals(new int[] {0}, support(fill(s, new float[] {4f, 3f, -1f}, new int[] {0, 1, 1, 1})));
        // Counted once even when seen twice: 4/2 = 2 < 3, not 4/4 = 1; the temperature-1 probabilities show it.
        Distribution d = fill(SamplerSettings.sampling(1f, 0).withRepetitionPenalty(2f, 3), new float[] {4f, 3f, -1f}, new int[] {0, 2, 0});
        double z = Math.exp(2) + Math.exp(3) + Math.exp(-2);
        assertEquals(Math.exp(2) / z, d.p(0), 1e-6);
        assertEquals(Math.exp(-2) / z, d.p(2), 1e-6);
    }

    @Test
    void residualIsTheNormalisedPositivePartOfPMinusQ() {
        Distribution p = new Distribution(3), q = new Distribution(3), r = new Distribution(3);
        p.add(0, 0.5f); p.add(1, 0.3f); p.add(2, 0.2f);
        q.add(0, 0.7f); q.add(1, 0.1f); q.add(2, 0.2f);
        r.setResidual(p, q);
        assertArrayEquals(new int[] {1}, support(r));
        assertEquals(1f, r.p(1), 1e-6);
    }

    @Test
    void aSeedReproducesTheSameDraws() {
        Distribution d = fill(SamplerSettings.sampling(1f, 0), new float[] {0.1f, 0.5f, 0.2f, 0.4f}, NO_CONTEXT);
        int[] a = new int[50], b = new int[50];
        SplittableRandom r1 = new SplittableRandom(42), r2 = new SplittableRandom(42);
        for (int i = 0; i < 50; i++) {
            a[i] = d.sample(r1);
            b[i] = d.sample(r2);
        }
        assertArrayEquals(a, b);
    }

    @Test
    void sortKeysOrderByLogitDescendingThenIdAscending() {
        float[] logits = {-0f, 0f, -1f, Float.NEGATIVE_INFINITY, 2.5f, 2.5f};
        long[] keys = new long[logits.length];
        for (int i = 0; i < logits.length; i++) keys[i] = Sampler.key(logits[i], i);
        java.util.Arrays.sort(keys);
        int[] order = new int[keys.length];
        for (int i = 0; i < keys.length; i++) order[i] = (int) keys[i];
        assertArrayEquals(new int[] {4, 5, 1, 0, 2, 3}, order);
    }
}
