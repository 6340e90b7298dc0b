package dev.tandem.engine;

import dev.tandem.decode.DraftPolicy;
import dev.tandem.decode.Drafter;
import dev.tandem.decode.SpeculativeStep;
import dev.tandem.decode.TokenChoice;
import dev.tandem.tokenizer.StreamDecoder;

import java.util.Arrays;

/**
 * One request's state inside the scheduler: its prompt, what it has generated, where its K/V stands.
 * Touched only by the scheduler thread once submitted.
 *
 * <p>{@code context} holds the prompt then the generated tokens, with room after them for a draft. The main
 * model's K/V holds positions [0, contextLength() - 1): the last token is the next pass's input.
 */
final class Sequence {
    /**
     * Speculation for this sequence: which drafter, with which draft-length policy; its name for the stats; the bit
     * of the drafter's K/V storage over the shared pool (0: it has none).
     */
    record Speculation(String name, Drafter drafter, DraftPolicy policy, int storage) {}

    /** The main model's K/V storage bit for {@link dev.tandem.runtime.PagedKvCache#publish}. */
    static final int MAIN_STORAGE = 1;

    final Generation generation;
    final int[] prompt;
    /** Most tokens to generate, already limited by the context. */
    final int maxTokens;
    final long deadlineNanos;
    final boolean hasDeadline;
    final boolean ignoreEndOfGeneration;
    final TokenChoice choice;
    final StreamDecoder decoder;
    final StopStrings stops;
    /** K/V blocks this sequence may grow to; reserved against the pool at admission. */
    final int committedBlocks;
    /** Null for plain decoding. */
    final Speculation speculation;
    final long submittedNanos = System.nanoTime();
    final int[] context;

    int kvSequence = -1;
    /** Prompt positions whose K/V the prefix cache shared at admission. */
    int cachedPromptTokens;
    /** Opened at admission when {@code speculation} is set. */
    SpeculativeStep step;
    int generatedCount;
    final StringBuilder text = new StringBuilder();
    long firstTokenNanos;
    /** When the prefill began and when it ended (both models when speculative); 0 until admission. */
    long prefillStartNanos, prefillEndNanos;
    /** The current pass: this sequence's first row, and its draft length (0: one plain row). */
    int firstRow, draftLength;
    /** The draft this step plans, while the drafting round runs; null otherwise. */
    Drafter.Proposal proposal;
    /** What the draft-ahead of this step threw; the sequence fails once the verification in flight is done. */
    Throwable aheadFailure;

    Sequence(Generation generation, int[] prompt, int maxTokens, long deadlineNanos, boolean hasDeadline,
             boolean ignoreEndOfGeneration, TokenChoice choice, StreamDecoder decoder, StopStrings stops,
             int committedBlocks, Speculation speculation) {
        this.generation = generation;
        this.prompt = prompt;
        this.maxTokens = maxTokens;
        this.deadlineNanos = deadlineNanos;
        this.hasDeadline = hasDeadline;
        this.ignoreEndOfGeneration = ignoreEndOfGeneration;
        this.choice = choice;
        this.decoder = decoder;
        this.stops = stops;
        this.committedBlocks = committedBlocks;
        this.speculation = speculation;
        // After the context: a draft, and while it is verified the draft-ahead's guess and the next draft after it.
        int scratch = speculation == null ? 0 : 2 * speculation.policy().draftMax() + 1;
        this.context = Arrays.copyOf(prompt, prompt.length + maxTokens + scratch + 1);
    }

    int contextLength() { return prompt.length + generatedCount; }

    /** The K/V storages this sequence reads and writes: the main model's, and its draft model's if it has one. */
    int storages() { return MAIN_STORAGE | (speculation == null ? 0 : speculation.storage()); }

    void addGenerated(int token) {
        context[prompt.length + generatedCount++] = token;
    }

    int[] generatedTokens() { return Arrays.copyOfRange(context, prompt.length, prompt.length + generatedCount); }

    boolean pastDeadline(long now) { return hasDeadline && now - deadlineNanos > 0; }
}
