package dev.tandem.decode;

/** Generates a continuation of a prompt, one sequence at a time. */
public interface Generator {
    /**
     * Continues {@code prompt} (token ids, BOS included if the model wants one) until {@code limits} or the
     * listener stop it. Each call starts from an empty K/V cache and is independent of earlier calls.
     */
    GenerationResult generate(int[] prompt, GenerationLimits limits, TokenListener listener);

    default GenerationResult generate(int[] prompt, GenerationLimits limits) {
        return generate(prompt, limits, TokenListener.NONE);
    }
}
