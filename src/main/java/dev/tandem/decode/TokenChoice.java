package dev.tandem.decode;

import dev.tandem.runtime.ForwardResult;

import java.util.SplittableRandom;

/**
 * One sequence's way of choosing its next token from a row of main-model logits: the sampler chain of its
 * {@link SamplerSettings} and its own seeded random stream. Plain steps, the first token after the prompt and a
 * {@link SpeculativeStep}'s verification all draw from this one instance, so a sequence's draws depend only on
 * its seed and its own logits, not on what else shares the pass. Holds buffers for one vocabulary; one caller
 * at a time.
 */
public final class TokenChoice {
    private final SamplerSettings settings;
    private final int vocabularySize;
    private final Sampler sampler;
    private final Distribution p;
    private final float[] logits;
    private final SplittableRandom random;

    public TokenChoice(SamplerSettings settings, int vocabularySize) {
        this.settings = settings;
        this.vocabularySize = vocabularySize;
        this.sampler = new Sampler(settings, vocabularySize);
        this.p = new Distribution(vocabularySize);
        this.logits = new float[vocabularySize];
        this.random = new SplittableRandom(settings.seed());
    }

    public SamplerSettings settings() { return settings; }

    public int vocabularySize() { return vocabularySize; }

    SplittableRandom random() { return random; }

    /** The token after {@code context[0, contextLength)}, from result row {@code row}. */
    public int choose(ForwardResult result, int row, int[] context, int contextLength) {
        return distribution(result, row, context, contextLength).sample(random);
    }

    /** The main model's distribution p for result row {@code row}; valid until the next call. */
    Distribution distribution(ForwardResult result, int row, int[] context, int contextLength) {
        result.copyLogits(row, logits);
        sampler.fill(logits, vocabularySize, context, contextLength, p);
        return p;
    }
}
