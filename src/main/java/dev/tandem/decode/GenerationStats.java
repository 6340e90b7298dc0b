package dev.tandem.decode;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The figures of one generation. Speculative counts satisfy {@code drafted = accepted + rejected + ignored}, and
 * the histogram of accepted lengths (index = accepted draft tokens in a verification pass) sums to
 * {@code verificationPasses}. Plain generation has all speculative counts at zero.
 *
 * @param promptTokens           prompt length
 * @param promptMillis           prefill time (both models when speculative), up to the first token's logits
 * @param generatedTokens        tokens emitted
 * @param generationMillis       time from the end of the prefill to the last token
 * @param timeToFirstTokenMillis time from the start to the first emitted token
 * @param draftedTokens          tokens proposed by the drafter
 * @param acceptedTokens         drafted tokens the main model kept and that were emitted
 * @param rejectedTokens         drafted tokens the main model disagreed with (and those after them)
 * @param ignoredTokens          drafted tokens never used for another reason: a draft shorter than draft-min,
 *                               or accepted tokens cut off by a stop (end of generation, max tokens, listener)
 * @param verificationPasses     main-model passes that checked a draft
 * @param acceptedLengthHistogram passes by number of accepted draft tokens
 * @param draftMillis            time spent drafting
 * @param verifyMillis           time spent in verification passes
 */
public record GenerationStats(int promptTokens, double promptMillis, int generatedTokens, double generationMillis,
                              double timeToFirstTokenMillis, long draftedTokens, long acceptedTokens,
                              long rejectedTokens, long ignoredTokens, long verificationPasses,
                              int[] acceptedLengthHistogram, double draftMillis, double verifyMillis) {

    public GenerationStats {
        acceptedLengthHistogram = acceptedLengthHistogram.clone();
    }

    @Override
    public int[] acceptedLengthHistogram() { return acceptedLengthHistogram.clone(); }

    /** Generated tokens per second of generation time (prefill excluded, as llama.cpp's predicted_per_second). */
    public double tokensPerSecond() {
        return generationMillis > 0 ? generatedTokens * 1000.0 / generationMillis : 0;
    }

    /** Accepted over drafted-and-verified tokens (ignored ones excluded); 0 when nothing was drafted. */
    public double acceptanceRate() {
        long verified = acceptedTokens + rejectedTokens;
        return verified > 0 ? (double) acceptedTokens / verified : 0;
    }

    /** Accepted draft tokens per verification pass. */
    public double meanAcceptedLength() {
        return verificationPasses > 0 ? (double) acceptedTokens / verificationPasses : 0;
    }

    /**
     * The figures under the names users know: LM Studio's {@code stats} ({@code tokens_per_second},
     * {@code time_to_first_token} in seconds, {@code *_draft_tokens_count}) and llama.cpp's timings
     * ({@code prompt_n}, {@code prompt_ms}, {@code predicted_n}, {@code predicted_ms}, {@code draft_n},
     * {@code draft_n_accepted}); ready for Jackson.
     */
    public Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("prompt_n", promptTokens);
        m.put("prompt_ms", promptMillis);
        m.put("predicted_n", generatedTokens);
        m.put("predicted_ms", generationMillis);
        m.put("tokens_per_second", tokensPerSecond());
        m.put("time_to_first_token", timeToFirstTokenMillis / 1000.0);
        m.put("total_draft_tokens_count", draftedTokens);
        m.put("accepted_draft_tokens_count", acceptedTokens);
        m.put("rejected_draft_tokens_count", rejectedTokens);
        m.put("ignored_draft_tokens_count", ignoredTokens);
        m.put("draft_n", draftedTokens - ignoredTokens);
        m.put("draft_n_accepted", acceptedTokens);
        m.put("verification_passes", verificationPasses);
        m.put("acceptance_rate", acceptanceRate());
        m.put("mean_accepted_length", meanAcceptedLength());
        m.put("accepted_length_histogram", Arrays.stream(acceptedLengthHistogram).boxed().toList());
        m.put("draft_ms", draftMillis);
        m.put("verify_ms", verifyMillis);
        return m;
    }
}
