package dev.tandem.decode;

import java.util.Arrays;

/**
 * The growing context (prompt, then generated tokens) and the rules for emitting a token: count it, tell the
 * listener, and decide whether generation stops. The array has room past the end for draft scratch.
 */
final class TokenSink {
    final int[] context;
    int length;
    private final int promptLength, maxTokens;
    private final GenerationLimits limits;
    private final TokenListener listener;
    private final StatsRecorder stats;
    private StopReason stop;

    /** {@code maxTokens} is already clamped to the context room; {@code scratch} extra slots for drafts. */
    TokenSink(int[] prompt, int maxTokens, int scratch, GenerationLimits limits, TokenListener listener, StatsRecorder stats) {
        this.context = Arrays.copyOf(prompt, prompt.length + maxTokens + scratch);
        this.length = prompt.length;
        this.promptLength = prompt.length;
        this.maxTokens = maxTokens;
        this.limits = limits;
        this.listener = listener;
        this.stats = stats;
    }

    /** Emits {@code token}; returns false when generation must stop after it. */
    boolean emit(int token, boolean fromDraft) {
        context[length++] = token;
        stats.tokenEmitted();
        boolean go = listener.onToken(token, fromDraft);
        if (limits.endOfGeneration().test(token)) stop = StopReason.END_OF_GENERATION;
        else if (!go) stop = StopReason.LISTENER;
        else if (generated() == maxTokens) stop = maxTokens < limits.maxTokens() ? StopReason.CONTEXT_FULL : StopReason.MAX_TOKENS;
        return stop == null;
    }

    int generated() { return length - promptLength; }

    /** Tokens still allowed. */
    int remaining() { return maxTokens - generated(); }

    GenerationResult result(GenerationStats s) {
        return new GenerationResult(Arrays.copyOfRange(context, promptLength, length), stop, s);
    }

    /**
     * The tokens a generation of {@code requested} tokens may emit when positions must stay below
     * {@code contextLength}: the last emitted token is never run, so prompt + tokens − 1 positions are used.
     */
    static int clampToContext(int promptLength, int requested, int contextLength) {
        if (promptLength < 1) throw new IllegalArgumentException("the prompt must hold at least one token");
        if (promptLength >= contextLength) {
            throw new IllegalArgumentException("the prompt of " + promptLength + " tokens does not fit the context length " + contextLength);
        }
        return (int) Math.min(requested, (long) contextLength - promptLength + 1);
    }
}
