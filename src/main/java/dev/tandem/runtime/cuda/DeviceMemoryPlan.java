package dev.tandem.runtime.cuda;

import dev.tandem.model.ModelConfig;
import dev.tandem.model.ModelFile;
import dev.tandem.model.Tensor;
import dev.tandem.runtime.LoadOptions;

/**
 * The device memory one {@link CudaModel} takes, known before anything is uploaded, so that a model that does not
 * fit fails at once, naming both numbers, instead of deep into its upload.
 *
 * @param weights     matrices as the file stores them, vectors as floats, each allocation rounded up as the
 *                    driver rounds it (2 MiB pages for large buffers)
 * @param kvCache     K and V of {@code kvPositions} positions in the cache's element type
 * @param kvPositions the positions {@link LoadOptions#kvPositions()} announced (0: not known yet; checked again
 *                    when the cache is made)
 * @param scratch     per-pass buffers: activations of {@code maxBatchRows} rows, 17 rows of logits, attention
 *                    partials, sampled verification's distributions, GEMM staging; plus {@link #RESERVE}
 */
public record DeviceMemoryPlan(long weights, long kvCache, long kvPositions, long scratch) {
    /** Head room for CUDA graphs, events and the allocator's own bookkeeping. */
    static final long RESERVE = 64L << 20;
    private static final long PAGE = 2L << 20;

    public long total() { return weights + kvCache + scratch; }

    /** The parts that are not zero: "weights 1.00 GiB + K/V cache 256.0 MiB for 8192 positions + scratch 90.1 MiB". */
    public String describe() {
        java.util.List<String> parts = new java.util.ArrayList<>();
        if (weights > 0) parts.add("weights " + DeviceRequirements.size(weights));
        if (kvCache > 0) parts.add("K/V cache " + DeviceRequirements.size(kvCache) + " for " + kvPositions + " positions");
        if (scratch > 0) parts.add("scratch " + DeviceRequirements.size(scratch));
        return String.join(" + ", parts);
    }

    /** Throws {@link DeviceMemoryException} naming both numbers when {@code what} does not fit in {@code device}'s free memory. */
    public void requireFree(DeviceFacts device, String what) {
        String shortOf = DeviceRequirements.tooLittleMemory(device, what, this);
        if (shortOf != null) throw new DeviceMemoryException(shortOf);
    }

    /** What {@code file} takes loaded with {@code options}; {@code gemm}: whether long prompts stage GEMM operands. */
    public static DeviceMemoryPlan of(ModelFile file, LoadOptions options, boolean gemm) {
        ModelConfig c = file.config();
        long weights = 0;
        for (Tensor t : file.tensors()) weights += allocation(t.dimensions() >= 2 ? t.byteSize() : t.elements() * Float.BYTES);
        long kv = options.kvPositions() * c.kvBytesPerPosition(options.kvType().bytes());
        return new DeviceMemoryPlan(weights, kv, options.kvPositions(), scratch(c, options, gemm));
    }

    /**
     * The buffers {@link CudaModel} allocates besides weights and K/V (at their largest usual size). Kept draft rows
     * are not among them: their caller sizes them, and {@link CudaSampling#keepDraftRows} checks them when made.
     */
    static long scratch(ModelConfig c, LoadOptions options, boolean gemm) {
        long rows = options.maxBatchRows(), vocab = c.vocabularySize(), maxRows = LaunchGeometry.MAX_ROWS;
        long activations = rows * (4L * c.hiddenSize() + 2L * c.qDim() + 2L * c.kvDim() + 3L * c.ffnSize()) * Float.BYTES;
        long logits = maxRows * vocab * Float.BYTES;
        long sampling = (2 * maxRows - 1) * vocab * Float.BYTES;
        long context = options.kvPositions() > 0 ? Math.min(options.kvPositions(), c.contextLength()) : c.contextLength();
        long partials = rows * c.heads() * LaunchGeometry.attentionChunks((int) context) * (c.headDim() + 2L) * Float.BYTES;
        long widest = Math.max(Math.max(c.hiddenSize(), c.qDim()), c.ffnSize());
        long gemmStaging = gemm ? rows * widest * 2 + (16L << 20) * 2 : 0;
        return activations + logits + sampling + partials + gemmStaging + RESERVE;
    }

    /** An allocation of {@code bytes} as the driver sizes it: whole 2 MiB pages from 1 MiB up. */
    private static long allocation(long bytes) {
        long unit = bytes >= (1L << 20) ? PAGE : 512;
        return (bytes + unit - 1) / unit * unit;
    }
}
