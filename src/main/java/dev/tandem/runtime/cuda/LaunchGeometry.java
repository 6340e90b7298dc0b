package dev.tandem.runtime.cuda;

import dev.tandem.model.TensorType;

/**
 * The launch geometry each kernel is written for (see the comment at the top of each {@code kernels/*.cu}).
 * Block sizes are part of a kernel's reduction order, so they are fixed here and nowhere else; grid sizes
 * follow from the shapes. Shape rules a kernel relies on are checked here, with messages naming the shape.
 */
public final class LaunchGeometry {
    /** Activation rows one matvec launch handles (1 decode row + 16 draft tokens). */
    public static final int MAX_ROWS = 17;
    /** Key positions per attention split; a constant, so the split depends on the context length only. */
    public static final int ATTENTION_CHUNK = 128;

    private static final int MATVEC_THREADS = 128;
    /** The gated matvec's block: two warps, so its two weight rows' stages take the shared memory four warps' one row does. */
    private static final int GATED_THREADS = 64;
    /** {@code kMatvecStages} and {@code kStageSpans} of {@code matvec.cu}: weight stages a warp keeps, spans a lane a stage. */
    private static final int MATVEC_STAGES = 2, STAGE_SPANS = 8;

    private LaunchGeometry() {}

    /** Elements per decoded unit of a weight row: rows must be a whole number of them. */
    public static int unit(TensorType type) {
        return switch (type) {
            case F32, F16, BF16 -> 8;
            case Q4_K, Q5_K, Q6_K -> 256;  // whole super-blocks
            default -> 32;
        };
    }

    /**
     * The row counts the matvec kernels are compiled for ({@code kernels/matvec.cu}, name suffix {@code _r<T>}):
     * exactly 1..8 rows, then any count up to 12 and up to 17. A launch of R rows runs the first instantiation
     * T >= R, so a decode pass issues one row's instructions.
     */
    public static final int[] MATVEC_ROW_COUNTS = {1, 2, 3, 4, 5, 6, 7, 8, 12, 17};

    /** The most rows the gated (gate, up and SwiGLU) matvec takes; longer passes use two matvecs and {@code swiglu}. */
    public static final int MATVEC_GATED_MAX_ROWS = 8;

    /** Index in {@link #MATVEC_ROW_COUNTS} of the instantiation that runs {@code rows} activation rows. */
    public static int matvecInstantiation(int rows) {
        checkMatvecRows(rows);
        int i = 0;
        while (MATVEC_ROW_COUNTS[i] < rows) i++;
        return i;
    }

    /** y[R][N] = x[R][K] · W^T for R in 1..17, N output rows in all (a grouped launch's matrices together). */
    public static LaunchDims matvec(TensorType type, int k, int n, int rows) {
        checkMatvecRows(rows);
        checkRowLength(type, k);
        if (n < 1) throw new IllegalArgumentException("matvec needs at least one output row, not " + n);
        return LaunchDims.of(ceilDiv(n, MATVEC_THREADS / 32), 1, 1, MATVEC_THREADS, MATVEC_THREADS / 32 * MATVEC_STAGES * stageBytes(type));
    }

    /** y[R][N] = silu(x · Wgᵀ) * (x · Wuᵀ) for R in 1..{@link #MATVEC_GATED_MAX_ROWS}: one warp per output row, two blocks' worth of warps a block. */
    public static LaunchDims matvecGated(TensorType type, int k, int n, int rows) {
        if (rows < 1 || rows > MATVEC_GATED_MAX_ROWS) {
            throw new IllegalArgumentException("the gated matvec takes 1.." + MATVEC_GATED_MAX_ROWS + " activation rows, not " + rows);
        }
        checkRowLength(type, k);
        if (n < 1) throw new IllegalArgumentException("matvec needs at least one output row, not " + n);
        return LaunchDims.of(ceilDiv(n, GATED_THREADS / 32), 1, 1, GATED_THREADS, GATED_THREADS / 32 * MATVEC_STAGES * 2 * stageBytes(type));
    }

    /**
     * Bytes of one warp's stage of one weight row in {@code matvec.cu}'s flat formats (F32, F16, BF16, Q8_0): 8 spans
     * of 16 bytes a lane, and for Q8_0 their 128 block scales; 0 for the formats read without staging.
     */
    static int stageBytes(TensorType type) {
        return switch (type) {
            case F32, F16, BF16 -> STAGE_SPANS * 32 * 16;
            case Q8_0 -> STAGE_SPANS * 32 * 16 + STAGE_SPANS * 32;
            default -> 0;
        };
    }

    public static LaunchDims embedding(TensorType type, int k, int rows) {
        checkRowLength(type, k);
        return LaunchDims.linear(rows, 256);
    }

    public static LaunchDims rmsnorm(int rows) { return LaunchDims.linear(rows, 256); }

    public static LaunchDims rope(int rows, int heads, int rotDim) {
        if (rotDim % 2 != 0) throw new IllegalArgumentException("RoPE dimension must be even, not " + rotDim);
        return LaunchDims.linear(ceilDiv(Math.multiplyExact(rows * heads, rotDim / 2), 256), 256);
    }

    /** swiglu and bias_add over n elements. */
    public static LaunchDims elementwise(int n) { return LaunchDims.linear(ceilDiv(n, 256), 256); }

    /** Chunks a query at context length {@code contextLength} (position + 1) is split into. */
    public static int attentionChunks(int contextLength) { return ceilDiv(contextLength, ATTENTION_CHUNK); }

    /** Query (row, head) pairs one pass of attention_partial over a chunk serves ({@code kPairs}). */
    static final int ATTENTION_PAIRS = 16;

    /**
     * One block per (chunk, KV head), for every row and query head; dynamic shared memory for a pass's queries
     * ({@link #ATTENTION_PAIRS} x headDim floats), scores ({@link #ATTENTION_PAIRS} x {@link #ATTENTION_CHUNK}),
     * the chunk's cache rows and the pairs' lengths, sums and maxima.
     */
    public static LaunchDims attentionPartial(int maxChunks, int kvHeads, int headDim) {
        int words = ATTENTION_PAIRS * (headDim + ATTENTION_CHUNK) + ATTENTION_CHUNK + 3 * ATTENTION_PAIRS + 4;
        return LaunchDims.of(maxChunks, kvHeads, 1, 128, words * Float.BYTES);
    }

    /**
     * Chunks of attention's partial buffers and grid for a context of {@code contextLength}: the next power of two
     * of the chunks it needs, so a captured CUDA graph serves a context that doubles before it is captured again.
     * Blocks of chunks past every row's context return at once.
     */
    public static int attentionChunkCapacity(int contextLength) { return Integer.highestOneBit(Math.max(1, attentionChunks(contextLength) * 2 - 1)); }

    /** rope_kv_append over {@code rows} new rows: 4 blocks of 256 a row. */
    public static LaunchDims ropeKvAppend(int rows) { return LaunchDims.of(rows, 4, 1, 256, 0); }


    public static LaunchDims kvAppend(int rows) { return LaunchDims.linear(rows, 128); }

    public static LaunchDims argmax(int rows) { return LaunchDims.linear(rows, 256); }

    public static LaunchDims acceptGreedy() { return LaunchDims.linear(1, 32); }

    /** One block of 256 per row, with {@link #SAMPLE_PROBS_SHARED_BYTES} of dynamic shared memory. */
    public static LaunchDims sampleProbs(int rows) { return LaunchDims.of(rows, 1, 1, 256, SAMPLE_PROBS_SHARED_BYTES); }

    /**
     * {@code kSampleSharedBytes} of {@code sample.cu}: 8 floats of reduction scratch, 260 ints of digit histogram,
     * then 1024 candidate keys (8 bytes) and their weights (4 bytes) for top-p after a top-k of at most 1024.
     */
    static final int SAMPLE_PROBS_SHARED_BYTES = 8 * Float.BYTES + 260 * Integer.BYTES + 1024 * (Long.BYTES + Float.BYTES);

    /** One block of 256 per verification; 264 words of dynamic shared memory (the inverse CDF's partial sums, its total and draw, flags). */
    public static LaunchDims acceptSampled(int verifications) { return LaunchDims.of(verifications, 1, 1, 256, 264 * Float.BYTES); }

    /** narrow16 over n elements. */
    public static LaunchDims narrow16(int n) { return elementwise(n); }

    /** dequantize16 of {@code rows} weight rows of {@code k} elements: one block of 256 per row. */
    public static LaunchDims dequantize16(TensorType type, int k, int rows) {
        checkRowLength(type, k);
        return LaunchDims.linear(rows, 256);
    }

    private static void checkMatvecRows(int rows) {
        if (rows < 1 || rows > MAX_ROWS) {
            throw new IllegalArgumentException("matvec takes 1.." + MAX_ROWS + " activation rows, not " + rows);
        }
    }

    private static void checkRowLength(TensorType type, int k) {
        int unit = unit(type);
        if (k < unit || k % unit != 0) {
            throw new IllegalArgumentException("a " + type + " row of " + k + " elements is not a whole number of " + unit
                    + "-element units, as the CUDA kernels need");
        }
    }

    private static int ceilDiv(int a, int b) { return (a + b - 1) / b; }
}
