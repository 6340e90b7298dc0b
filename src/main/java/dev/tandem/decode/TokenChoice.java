package dev.tandem.decode;

import dev.tandem.runtime.ForwardResult;

import java.util.SplittableRandom;

/**
 * One sequence's way of choosing its next token from a row of main-model logits: the sampler chain of its
 * {@link SamplerSettings} and its own seeded random stream. Plain steps, the first token after the prompt and
 * the {@link AcceptanceRule} of a speculative step all draw from this one instance, so a sequence's draws depend
 * only on its seed and its own logits, not on what else shares the pass. Holds buffers for one vocabulary; one
 * caller at a time.
 */
public final class TokenChoice {
    private final SamplerSettings settings;
    private final int vocabularySize;
    private final Sampler sampler;
    private final Distribution p;
    private final float[] logits;
    private final SplittableRandom random;
    /**
     * Greedy without a repetition penalty: the choice is the row's argmax ({@link ForwardResult#argmax}, ties to
     * the lower id as {@link Sampler#argmax}), so no logits need to leave the backend (on CUDA, only ids return).
     */
    private final boolean byArgmax;

    public TokenChoice(SamplerSettings settings, int vocabularySize) {
        this.settings = settings;
        this.vocabularySize = vocabularySize;
        this.sampler = new Sampler(settings, vocabularySize);
        this.p = new Distribution(vocabularySize);
        this.logits = new float[vocabularySize];
        this.random = new SplittableRandom(settings.seed());
        this.byArgmax = settings.isGreedy() && !settings.penalisesRepetition();
    }

    public SamplerSettings settings() { return settings; }

    public int vocabularySize() { return vocabularySize; }

    /** The stream every draw of this sequence comes from, the drafter's included, in program order. */
    SplittableRandom random() { return random; }

    /** Whether a choice is the row's plain argmax: then p is one-hot there and no draw is made. */
    boolean byArgmax() { return byArgmax; }

    /** The token after {@code context[0, contextLength)}, from result row {@code row}. */
    public int choose(ForwardResult result, int row, int[] context, int contextLength) {
        if (byArgmax) return result.argmax(row);
        return distribution(result, row, context, contextLength).sample(random);
    }

    /** The main model's distribution p for result row {@code row}; valid until the next call. */
    Distribution distribution(ForwardResult result, int row, int[] context, int contextLength) {
        result.copyLogits(row, logits);
        sampler.fill(logits, vocabularySize, context, contextLength, p);
        return p;
    }
}
