package dev.tandem.engine;

/**
 * The numbers of one generation. Draft counts use LM Studio's meaning: drafted = accepted + rejected + ignored
 * (ignored: drafted but never verified, e.g. a draft shorter than {@code draftMin}).
 *
 * @param timeToFirstToken seconds from submission to the first generated token (queueing and prefill included)
 * @param tokensPerSecond  generated tokens per second after the first one
 * @param draftModel       the draft used ("ngram" for prompt lookup), or null
 * @param cachedPromptTokens prompt tokens whose K/V came from the prefix cache instead of a prefill
 */
public record GenerationStats(int promptTokens, int completionTokens, double timeToFirstToken, double tokensPerSecond,
                              int draftTokens, int acceptedDraftTokens, int rejectedDraftTokens, int ignoredDraftTokens,
                              String draftModel, int cachedPromptTokens) {
    public int totalTokens() { return promptTokens + completionTokens; }

    /** Accepted / verified draft tokens, or 0 without speculation. */
    public double acceptanceRate() {
        int verified = acceptedDraftTokens + rejectedDraftTokens;
        return verified == 0 ? 0 : (double) acceptedDraftTokens / verified;
    }
}
