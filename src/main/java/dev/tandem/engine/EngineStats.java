package dev.tandem.engine;

/**
 * A snapshot of the engine's load. {@code active} sequences are in the batch; {@code waiting} ones are admitted
 * to the queue but not yet running. Counters are totals since the engine started.
 */
public record EngineStats(int active, int waiting, int kvBlocksInUse, int kvBlocksTotal,
                          long completed, long cancelled, long rejected, long generatedTokens, long forwardPasses) {}
