package dev.tandem.runtime;

/**
 * How a model is loaded.
 *
 * @param threads      CPU threads for the model's passes
 * @param kvType       element type of the K/V cache storage
 * @param maxBatchRows most token rows one forward pass takes; longer prompts are run in chunks of this size
 */
public record LoadOptions(int threads, KvType kvType, int maxBatchRows) {
    public LoadOptions {
        if (threads < 1) throw new IllegalArgumentException("threads must be at least 1, got " + threads);
        if (maxBatchRows < 1) throw new IllegalArgumentException("maxBatchRows must be at least 1, got " + maxBatchRows);
    }

    public static LoadOptions defaults() {
        return new LoadOptions(Runtime.getRuntime().availableProcessors(), KvType.F32, 64);
    }

    public LoadOptions withThreads(int n) { return new LoadOptions(n, kvType, maxBatchRows); }

    public LoadOptions withKvType(KvType t) { return new LoadOptions(threads, t, maxBatchRows); }
}
