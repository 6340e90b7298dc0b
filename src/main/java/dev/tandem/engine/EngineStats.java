package dev.tandem.engine;

/**
 * A snapshot of the engine's load. {@code active} sequences are in the batch; {@code waiting} ones are admitted
 * to the queue but not yet running. Counters are totals since the engine started.
 *
 * @param kvBlocksInUse         K/V blocks some sequence holds (a block shared by several counts once)
 * @param kvBlocksCached        blocks of cached prefixes nobody holds, kept until the pool needs their room
 * @param prefixCacheHitTokens  prompt tokens whose K/V came from the prefix cache instead of a prefill
 */
public record EngineStats(int active, int waiting, int kvBlocksInUse, int kvBlocksTotal,
                          long completed, long cancelled, long rejected, long generatedTokens, long forwardPasses,
                          int kvBlocksCached, long prefixCacheHitTokens) {}
