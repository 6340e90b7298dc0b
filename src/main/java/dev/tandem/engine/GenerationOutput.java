package dev.tandem.engine;

/** A finished generation: its text (stop string excluded), the generated token ids, why it ended, its numbers. */
public record GenerationOutput(String text, int[] tokenIds, FinishReason finishReason, GenerationStats stats) {}
