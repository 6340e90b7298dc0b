package dev.tandem.runtime;

/**
 * How a model is loaded.
 *
 * @param threads      CPU threads for the model's passes
 * @param kvType       element type of the K/V cache storage
 * @param maxBatchRows most token rows one forward pass takes; longer prompts are run in chunks of this size
 * @param kvPositions  K/V positions the caller means to hold for this model (all sequences together), so that a
 *                     device backend can check its memory before uploading anything; 0 when not known yet
 * @param draft        whether the model drafts for another (profilers label its passes "draft")
 */
public record LoadOptions(int threads, KvType kvType, int maxBatchRows, long kvPositions, boolean draft) {
    public LoadOptions {
        if (threads < 1) throw new IllegalArgumentException("threads must be at least 1, got " + threads);
        if (maxBatchRows < 1) throw new IllegalArgumentException("maxBatchRows must be at least 1, got " + maxBatchRows);
        if (kvPositions < 0) throw new IllegalArgumentException("kvPositions must be at least 0, got " + kvPositions);
    }

    /** A main model whose K/V size is not known at load time. */
    public LoadOptions(int threads, KvType kvType, int maxBatchRows) { this(threads, kvType, maxBatchRows, 0, false); }

    public static LoadOptions defaults() {
        return new LoadOptions(Runtime.getRuntime().availableProcessors(), KvType.F32, 64);
    }

    public LoadOptions withThreads(int n) { return new LoadOptions(n, kvType, maxBatchRows, kvPositions, draft); }

    public LoadOptions withKvType(KvType t) { return new LoadOptions(threads, t, maxBatchRows, kvPositions, draft); }

    public LoadOptions withKvPositions(long positions) { return new LoadOptions(threads, kvType, maxBatchRows, positions, draft); }

    /** The same options for a draft model. */
    public LoadOptions asDraft() { return new LoadOptions(threads, kvType, maxBatchRows, kvPositions, true); }
}
