package dev.tandem.decode;

import dev.tandem.runtime.NonFiniteOutputException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Issue 14, defect 5: a logit row with NaN or +infinity (NaN weights, an overflowing model) is a named model
 * error from the sampler, whatever backend produced it, where min-p used to keep no candidate and the draw
 * failed with {@code ArrayIndexOutOfBoundsException: -1}.
 */
class SamplerNonFiniteTest {
    private static final int[] NO_CONTEXT = {};

    private static void fill(SamplerSettings s, float[] logits) {
        new Sampler(s, logits.length).fill(logits, logits.length, NO_CONTEXT, 0, new Distribution(logits.length));
    }

    @ParameterizedTest(name = "a row holding {0}")
    @ValueSource(floats = {Float.NaN, Float.POSITIVE_INFINITY})
    void minPSamplingOfANonFiniteRowIsANamedModelError(float bad) {
        float[] logits = {1f, bad, 2f, 0.5f};
        NonFiniteOutputException e = assertThrows(NonFiniteOutputException.class,
                () -> fill(SamplerSettings.sampling(0.8f, 1).withMinP(0.05f), logits));
        assertTrue(e.getMessage().contains("output logits") && e.getMessage().contains("token 1"), e.getMessage());
    }

    @Test
    void greedyChoiceOfANaNRowIsTheSameError() {
        assertThrows(NonFiniteOutputException.class, () -> fill(SamplerSettings.greedy(), new float[] {Float.NaN, Float.NaN}));
    }

    @Test
    void aRowOfOnlyMinusInfinityHasNoDistribution() {
        float[] logits = {Float.NEGATIVE_INFINITY, Float.NEGATIVE_INFINITY};
        assertThrows(NonFiniteOutputException.class, () -> fill(SamplerSettings.sampling(1f, 1), logits));
    }

    @Test
    void aMinusInfinityLogitBesideFiniteOnesIsAZeroProbability() {
        float[] logits = {Float.NEGATIVE_INFINITY, 1f, 1f};
        Distribution d = new Distribution(3);
        new Sampler(SamplerSettings.sampling(1f, 1).withMinP(0.05f), 3).fill(logits, 3, NO_CONTEXT, 0, d);
        assertEquals(0f, d.p(0));
        assertNotEquals(0, d.sample(new SplittableRandom(1)));
    }
}
