package dev.tandem.decode;

import java.util.function.IntPredicate;

/**
 * When a generation stops.
 *
 * @param maxTokens       most tokens to generate (at least 1)
 * @param endOfGeneration tokens that end generation (they are emitted, then generation stops), e.g.
 *                        {@code tokenizer::isEndOfGeneration}
 */
public record GenerationLimits(int maxTokens, IntPredicate endOfGeneration) {
    public GenerationLimits {
        if (maxTokens < 1) throw new IllegalArgumentException("max tokens must be at least 1, got " + maxTokens);
        if (endOfGeneration == null) endOfGeneration = t -> false;
    }

    /** {@code maxTokens} tokens, no end-of-generation token. */
    public static GenerationLimits of(int maxTokens) {
        return new GenerationLimits(maxTokens, t -> false);
    }
}
