package dev.tandem.engine;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The numbers of one generation. Draft counts use LM Studio's meaning: drafted = accepted + rejected + ignored
 * (ignored: drafted but never used, e.g. a draft shorter than {@code draftMin}, or accepted tokens cut off by the
 * end of the generation); the histogram of accepted lengths sums to {@code verificationPasses}. Plain generation has
 * every draft figure at zero.
 *
 * @param timeToFirstToken seconds from submission to the first generated token (queueing and prefill included)
 * @param tokensPerSecond  generated tokens per second after the first one
 * @param draftModel       the draft used ("ngram" for prompt lookup), or null
 * @param cachedPromptTokens prompt tokens whose K/V came from the prefix cache instead of a prefill
 * @param promptMillis     the prefill (of both models when speculative) up to the first token's logits
 * @param generationMillis from the end of the prefill to the last token
 * @param verificationPasses main-model passes that checked a draft
 * @param acceptedLengthHistogram verification passes by the number of draft tokens accepted in them
 * @param draftMillis      time spent drafting (draft-ahead while the main model verifies not included: it overlaps)
 * @param verifyMillis     time spent in verification passes
 */
public record GenerationStats(int promptTokens, int completionTokens, double timeToFirstToken, double tokensPerSecond,
                              int draftTokens, int acceptedDraftTokens, int rejectedDraftTokens, int ignoredDraftTokens,
                              String draftModel, int cachedPromptTokens,
                              double promptMillis, double generationMillis, long verificationPasses,
                              int[] acceptedLengthHistogram, double draftMillis, double verifyMillis) {
    public GenerationStats {
        acceptedLengthHistogram = acceptedLengthHistogram.clone();
    }

    @Override
    public int[] acceptedLengthHistogram() { return acceptedLengthHistogram.clone(); }

    public int totalTokens() { return promptTokens + completionTokens; }

    /** Accepted / verified draft tokens, or 0 without speculation. */
    public double acceptanceRate() {
        int verified = acceptedDraftTokens + rejectedDraftTokens;
        return verified == 0 ? 0 : (double) acceptedDraftTokens / verified;
    }

    /** Accepted draft tokens per verification pass, or 0 without one. */
    public double meanAcceptedLength() {
        return verificationPasses > 0 ? (double) acceptedDraftTokens / verificationPasses : 0;
    }

    /**
     * llama.cpp's {@code predicted_per_second}: generated tokens over {@link #generationMillis}, so that it agrees
     * with {@code predicted_n} and {@code predicted_ms}. ({@link #tokensPerSecond} leaves the first token out.)
     */
    public double predictedPerSecond() {
        return generationMillis > 0 ? completionTokens * 1000.0 / generationMillis : 0;
    }

    /**
     * The figures under the names users know: LM Studio's {@code stats} ({@code tokens_per_second},
     * {@code time_to_first_token} in seconds, {@code *_draft_tokens_count}) and llama.cpp's timings
     * ({@code prompt_n}, {@code prompt_ms}, {@code predicted_n}, {@code predicted_ms}, {@code draft_n},
     * {@code draft_n_accepted}); ready for Jackson. {@code tokens_per_second} is {@link #predictedPerSecond()}.
     */
    public Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("prompt_n", promptTokens);
        m.put("prompt_ms", promptMillis);
        m.put("predicted_n", completionTokens);
        m.put("predicted_ms", generationMillis);
        m.put("tokens_per_second", predictedPerSecond());
        m.put("time_to_first_token", timeToFirstToken);
        m.put("total_draft_tokens_count", draftTokens);
        m.put("accepted_draft_tokens_count", acceptedDraftTokens);
        m.put("rejected_draft_tokens_count", rejectedDraftTokens);
        m.put("ignored_draft_tokens_count", ignoredDraftTokens);
        m.put("draft_n", draftTokens - ignoredDraftTokens);
        m.put("draft_n_accepted", acceptedDraftTokens);
        m.put("verification_passes", verificationPasses);
        m.put("acceptance_rate", acceptanceRate());
        m.put("mean_accepted_length", meanAcceptedLength());
        m.put("accepted_length_histogram", Arrays.stream(acceptedLengthHistogram).boxed().toList());
        m.put("draft_ms", draftMillis);
        m.put("verify_ms", verifyMillis);
        return m;
    }
}
