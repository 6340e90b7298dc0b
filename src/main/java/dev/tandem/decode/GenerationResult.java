package dev.tandem.decode;

/** The generated tokens (prompt excluded), why generation ended, and its figures. */
public record GenerationResult(int[] tokens, StopReason stopReason, GenerationStats stats) {}
