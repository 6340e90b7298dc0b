package dev.tandem.engine;

import dev.tandem.tokenizer.StreamDecoder;

import java.util.Arrays;

/**
 * One request's state inside the scheduler: its prompt, what it has generated, where its K/V stands.
 * Touched only by the scheduler thread once submitted.
 */
final class Sequence {
    final Generation generation;
    final int[] prompt;
    /** Most tokens to generate, already limited by the context. */
    final int maxTokens;
    final long deadlineNanos;
    final boolean hasDeadline;
    final boolean ignoreEndOfGeneration;
    final TokenSampler sampler;
    final StreamDecoder decoder;
    final StopStrings stops;
    /** K/V blocks this sequence may grow to; reserved against the pool at admission. */
    final int committedBlocks;
    final String draftName;
    final long submittedNanos = System.nanoTime();

    int kvSequence = -1;
    /** Positions written to the K/V cache; the next token goes in at this position. */
    int position;
    int lastToken;
    int[] generated = new int[16];
    int generatedCount;
    final StringBuilder text = new StringBuilder();
    long firstTokenNanos;

    Sequence(Generation generation, int[] prompt, int maxTokens, long deadlineNanos, boolean hasDeadline,
             boolean ignoreEndOfGeneration, TokenSampler sampler, StreamDecoder decoder, StopStrings stops,
             int committedBlocks, String draftName) {
        this.generation = generation;
        this.prompt = prompt;
        this.maxTokens = maxTokens;
        this.deadlineNanos = deadlineNanos;
        this.hasDeadline = hasDeadline;
        this.ignoreEndOfGeneration = ignoreEndOfGeneration;
        this.sampler = sampler;
        this.decoder = decoder;
        this.stops = stops;
        this.committedBlocks = committedBlocks;
        this.draftName = draftName;
    }

    void addGenerated(int token) {
        if (generatedCount == generated.length) generated = Arrays.copyOf(generated, generated.length * 2);
        generated[generatedCount++] = token;
    }

    int[] generatedTokens() { return Arrays.copyOf(generated, generatedCount); }

    boolean pastDeadline(long now) { return hasDeadline && now - deadlineNanos > 0; }
}
