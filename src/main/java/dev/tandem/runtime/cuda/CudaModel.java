package dev.tandem.runtime.cuda;

import dev.tandem.model.ModelConfig;
import dev.tandem.model.ModelFile;
import dev.tandem.model.RopeLayout;
import dev.tandem.model.Tensor;
import dev.tandem.model.TensorType;
import dev.tandem.runtime.Batch;
import dev.tandem.runtime.ForwardResult;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.KvType;
import dev.tandem.runtime.LoadOptions;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.runtime.PagedKvCache;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;

/**
 * A Llama/Qwen2 transformer on a {@link GpuDriver}: the forward pass of {@code runtime.cpu.CpuModel}, as a
 * sequence of kernel launches on this model's own stream.
 *
 * <p>A pass: the host validates the batch and stages token ids, positions and the block tables of the rows'
 * sequences in one pinned buffer (one upload); the stream then runs embedding, per layer RMSNorm, Q/K/V
 * (+bias), RoPE, K/V append into the paged cache, attention, output projection, FFN, each residual add fused
 * into the next RMSNorm, and the head for the asked rows; then argmax on the device, and only the ids come back
 * by default (logits are copied when first read). Batches run in chunks of {@code maxBatchRows} rows through
 * all layers; matvec launches take at most {@link LaunchGeometry#MAX_ROWS} rows, so a chunk of 17 rows or fewer
 * reads each weight once.
 *
 * <p>Bitwise contract: every kernel reduces in an order fixed by the reduction length, so a row's logits have
 * the same bits whatever the other rows of its pass (see {@code kernels/README.md}).
 *
 * <p>Weights are uploaded once, in the {@link WeightLayout} (the file's block bytes, or for Q8_0, Q4_0 and Q6_K the
 * same values repacked so that quants load 16 bytes at a time); norms and biases as floats. The K/V
 * cache holds F32, F16 or BF16 ({@link LoadOptions#kvType()}); 16-bit values are rounded to nearest even when
 * appended, as the CPU backend does.
 *
 * <p>Long prompts: with a {@link Gemm} (cuBLAS, or its host emulation), a chunk of at least {@link #gemmRows()} rows
 * multiplies each weight matrix as one GEMM: activations narrowed to 16 bits, weight rows decoded to 16 bits in
 * slices (F16/BF16 weights are used as stored), FP32 accumulation. Such passes are outside the bitwise contract
 * (cuBLAS picks its reduction order by shape); decode and verification passes (at most 17 rows) never use it.
 *
 * <p>Speculative verification can finish on the device: greedy ({@link #verifyGreedy}), the pass's argmax ids and
 * the accepted length come back in one copy of k+2 ints; sampled ({@link #verifySampled}), {@code sample_probs}
 * turns the k+1 rows into the sampler chain's distributions and {@code accept_sampled} runs the rejection test
 * against the draft's uploaded distributions, and two ints come back.
 */
public final class CudaModel implements LoadedModel {
    private record Matrix(String name, TensorType type, DeviceBuffer data, int columns, int rows) {
        /** Whether one grouped or gated matvec launch can read this matrix beside {@code other}. */
        boolean launchesWith(Matrix other) { return type == other.type && columns == other.columns; }
    }

    /** out = x · mᵀ (+ bias, when not null): one matrix of a grouped matvec launch. */
    private record Projection(Matrix m, DeviceBuffer bias, DeviceBuffer out) {}

    /** After a projection: residual += its output, then normOut = rmsnorm(residual) * weight (rmsnorm_residual's work). */
    private record ResidualNorm(DeviceBuffer residual, DeviceBuffer weight, DeviceBuffer normOut) {}

    private record Layer(DeviceBuffer attnNorm, Matrix wq, Matrix wk, Matrix wv, Matrix wo,
                         DeviceBuffer bq, DeviceBuffer bk, DeviceBuffer bv,
                         DeviceBuffer ffnNorm, Matrix gate, Matrix up, Matrix down) {}

    /** Rows {@code [row, row + rows)} of a chunk (chunk-relative) that belong to one sequence. */
    private record Run(int row, int rows, int tableOffset, int maxChunks) {}

    /** Batch rows {@code [start, start + rows)}; its result rows are {@code [firstLogit, endLogit)}. */
    private record Chunk(int start, int rows, List<Run> runs, int firstLogit, int endLogit) {}

    /** The outcome of {@link #verifyGreedy}: {@code accepted} draft tokens agree, then the main model's {@code next}. */
    public record GreedyVerdict(int accepted, int next, CudaForwardResult pass) {}

    private final GpuDriver driver;
    /** Long prompt chunks' matrix products, or null. */
    private final Gemm gemm;
    private int gemmRows = Integer.getInteger("tandem.gemmRows", 64);
    /** GEMM scratch: a chunk's activations and a slice of weight rows, 16-bit; grown on demand. */
    private DeviceBuffer gemmActivations, gemmWeights;
    private long gemmCalls;
    /** Weight elements decoded per GEMM slice: bounds the weight scratch (2 bytes each). */
    private static final long GEMM_SLICE_ELEMENTS = 16L << 20;
    private final ModelConfig c;
    private final KvType kvType;
    private final int maxRows;
    private final GpuStream stream;
    private final List<AutoCloseable> owned = new ArrayList<>();

    private final Matrix embedding, output;
    private final DeviceBuffer outputNorm, ropeFactors;
    /** The matvec residual epilogue's count of finished blocks: one device word, 0 between launches. */
    private final DeviceBuffer blocksDone;
    /** attention_partial's counts of finished blocks, one word per KV head, 0 between launches. */
    private final DeviceBuffer attentionDone;
    private final Layer[] layers;
    private final float attentionScale;

    // Per-chunk activations, row-major: row r of a w-wide buffer is floats [r*w, (r+1)*w).
    private final DeviceBuffer x, xb, q, k, v, att, proj, gate, up, hidden, gathered;
    // Grown when a pass needs more; only while the stream is idle (the previous pass is done).
    private PinnedBuffer hostInts, hostIds, hostTops;
    private DeviceBuffer deviceInts, ids, tops, logits, partialOut, partialMax, partialSum;
    private PinnedBuffer hostLogits;
    // Sampled verification: [seed low, seed high, position of d1, unused][q: k rows of the vocabulary] staged in one
    // pinned buffer and copied in one go; the main model's distributions; the verdict (accepted, next, and a draft
    // draw's top-token probability).
    private PinnedBuffer hostSampling;
    private DeviceBuffer deviceSampling, probs;
    private final DeviceBuffer verdict;
    private final PinnedBuffer hostVerdict;
    private static final int SAMPLING_META_BYTES = 4 * Integer.BYTES;

    private int stagedInts;

    /** What a captured pass depends on besides the buffers {@link #stage} owns. */
    private record GraphKey(CudaKvCache kv, List<Chunk> chunks, List<Integer> logitRows, boolean verify, Sampling sampling) {}

    /**
     * The sampler chain of a sampled verification or draft draw as its kernels take it; null for other passes. A
     * verification reads the draft's q rows from the staged upload ({@code qOwner} null) or from {@code qOwner}'s
     * kept rows from {@code qRow} on; a draft draw ({@code draw}) makes q in {@link #probs} row 0 and draws from it.
     * The kept row a draw fills is not part of it: the copy there runs after the pass, outside any graph, so one
     * graph serves every row (34 rows would otherwise take 34 graphs per pass shape).
     */
    private record Sampling(float invTemperature, int topK, float topP, float minP, CudaModel qOwner, int qRow, boolean draw) {}

    /** {@link LoadedModel#KEPT_DRAFT_ROWS} rows of the vocabulary for {@link #sampleDraftAsync}; allocated on the first draw, never moved (graphs of other models hold it). */
    private DeviceBuffer keptRows;

    private static final int MAX_GRAPHS = 64;
    private final java.util.Map<GraphKey, GpuGraph> graphs = new java.util.HashMap<>();
    /** On unless {@code tandem.cudaGraphs=false}, or kernel profiling is on (it cannot time launches inside a graph). */
    private boolean useGraphs;
    private long graphCaptures, graphLaunches, draws;
    /** "verify kjv-main", "draft kjv-draft", ...: this model's NVTX ranges. */
    private final Nvtx.Ranges ranges;
    /** Whether this model drafts for another ({@link LoadOptions#draft()}): its passes are "draft" ranges. */
    private final boolean drafting;
    private CompletableFuture<?> previous = CompletableFuture.completedFuture(null);
    private long passes;
    /** Recorded on {@link #stream} after each pass's work: the pass is done on the device when it is reached. */
    private final GpuEvent passDone;

    CudaModel(GpuDriver driver, Gemm gemm, ModelFile file, LoadOptions options) {
        String name = nameOf(file);
        // Before anything is allocated: a model that does not fit fails here, leaving the device as it was.
        DeviceMemoryPlan.of(file, options, gemm != null).requireFree(driver.facts(), "model '" + name + "'");
        this.ranges = Nvtx.get().forModel(name);
        this.drafting = options.draft();
        this.driver = driver;
        this.gemm = gemm;
        this.c = file.config();
        this.kvType = options.kvType();
        this.maxRows = options.maxBatchRows();
        this.useGraphs = Boolean.parseBoolean(System.getProperty("tandem.cudaGraphs", Boolean.toString(!(driver instanceof KernelProfile))));
        this.stream = own(driver.createStream());
        this.passDone = own(driver.createEvent());
        try (DeviceUpload upload = new DeviceUpload(driver, stream)) {
            embedding = matrix(upload, file.tensor("token_embd.weight"), true);
            output = c.tiedEmbeddings() ? embedding : matrix(upload, file.tensor("output.weight"), false);
            outputNorm = vector(upload, file.tensor("output_norm.weight"));
            float[] factors = c.ropeFrequencyFactors();
            ropeFactors = factors == null ? null : own(upload.copy(factors));
            blocksDone = own(upload.copy(new float[1]));  // the bits of 0.0f: the unsigned count 0
            attentionDone = own(upload.copy(new float[c.kvHeads()]));
            layers = new Layer[c.layers()];
            for (int l = 0; l < c.layers(); l++) {
                String p = "blk." + l + ".";
                layers[l] = new Layer(
                        vector(upload, file.tensor(p + "attn_norm.weight")),
                        matrix(upload, file.tensor(p + "attn_q.weight"), false),
                        matrix(upload, file.tensor(p + "attn_k.weight"), false),
                        matrix(upload, file.tensor(p + "attn_v.weight"), false),
                        matrix(upload, file.tensor(p + "attn_output.weight"), false),
                        c.qkvBias() ? vector(upload, file.tensor(p + "attn_q.bias")) : null,
                        c.qkvBias() ? vector(upload, file.tensor(p + "attn_k.bias")) : null,
                        c.qkvBias() ? vector(upload, file.tensor(p + "attn_v.bias")) : null,
                        vector(upload, file.tensor(p + "ffn_norm.weight")),
                        matrix(upload, file.tensor(p + "ffn_gate.weight"), false),
                        matrix(upload, file.tensor(p + "ffn_up.weight"), false),
                        matrix(upload, file.tensor(p + "ffn_down.weight"), false));
            }
        } catch (RuntimeException e) {
            close();
            throw e;
        }
        attentionScale = 1.0f / (float) Math.sqrt(c.headDim());
        int h = c.hiddenSize();
        x = floats(maxRows * h);
        xb = floats(maxRows * h);
        q = floats(maxRows * c.qDim());
        k = floats(maxRows * c.kvDim());
        v = floats(maxRows * c.kvDim());
        att = floats(maxRows * c.qDim());
        proj = floats(maxRows * h);
        gate = floats(maxRows * c.ffnSize());
        up = floats(maxRows * c.ffnSize());
        hidden = floats(maxRows * c.ffnSize());
        gathered = floats(maxRows * h);
        verdict = own(driver.allocate(3 * Integer.BYTES));
        hostVerdict = own(driver.allocatePinned(3 * Integer.BYTES));
    }

    /** The file name without its extension ("kjv-main-q8_0"), a folder's name as is: how ranges and messages name the model. */
    static String nameOf(ModelFile file) {
        String name = file.path().toAbsolutePath().normalize().getFileName().toString();
        int dot = name.lastIndexOf('.');
        return dot > 0 && !java.nio.file.Files.isDirectory(file.path()) ? name.substring(0, dot) : name;
    }

    /** This model's NVTX ranges (its K/V cache names rollbacks with them). */
    Nvtx.Ranges nvtxRanges() { return ranges; }

    private <T extends AutoCloseable> T own(T resource) {
        owned.add(resource);
        return resource;
    }

    private DeviceBuffer floats(long count) { return own(driver.allocate(count * Float.BYTES)); }

    /** A weight matrix in the device layout ({@link WeightLayout}); fails, naming the tensor, when no kernel reads its type or shape. */
    private Matrix matrix(DeviceUpload upload, Tensor t, boolean isEmbedding) {
        try {
            if (!Kernel.hasMatvec(t.type())) throw new UnsupportedOperationException(t.type().toString());
            if (isEmbedding) Kernel.embedding(t.type());
        } catch (UnsupportedOperationException e) {
            throw new UnsupportedWeightException("tensor '" + t.name() + "' has type " + t.type()
                    + ", which the CUDA backend has no kernel for (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K)");
        }
        if (t.dimensions() != 2) throw new UnsupportedWeightException("tensor '" + t.name() + "' should be a matrix, it has shape " + t);
        int unit = LaunchGeometry.unit(t.type());
        if (t.columns() % unit != 0) {
            throw new UnsupportedWeightException("tensor '" + t.name() + "' (" + t.type() + ") has rows of " + t.columns()
                    + " elements; the CUDA kernels need a multiple of " + unit);
        }
        DeviceBuffer data = own(upload.matrix(t.type(), t.data(), t.rows(), t.columns()));
        return new Matrix(t.name(), t.type(), data, t.columns(), t.rows());
    }

    /** A norm weight or bias, as floats on the device. */
    private DeviceBuffer vector(DeviceUpload upload, Tensor t) {
        int n = Math.toIntExact(t.elements());
        MemorySegment d = t.data();
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = switch (t.type()) {
                case F32 -> d.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i);
                case F16 -> Float.float16ToFloat(d.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i));
                case BF16 -> Float.intBitsToFloat(d.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i) << 16);
                default -> throw new UnsupportedWeightException("tensor '" + t.name() + "' is a vector of type " + t.type()
                        + "; the CUDA backend reads vectors as F32, F16 or BF16");
            };
        }
        return own(upload.copy(out));
    }

    @Override public ModelConfig config() { return c; }

    @Override public long kvBytesPerPosition() { return c.kvBytesPerPosition(kvType.bytes()); }

    @Override
    public KvCache createKvCache(PagedKvCache tables) { return new CudaKvCache(this, driver, tables, kvType, c.layers(), c.kvDim()); }

    @Override
    public ForwardResult forward(Batch batch, KvCache kv) {
        try {
            return forwardAsync(batch, kv).toCompletableFuture().join();
        } catch (CompletionException e) {
            if (e.getCause() instanceof RuntimeException r) throw r;
            if (e.getCause() instanceof Error err) throw err;
            throw e;
        }
    }

    /**
     * Enqueues the pass on this model's stream and returns at once; the stage completes when the stream is done
     * with it. A model runs one pass at a time: a second call first waits for the previous pass, whose result
     * stays valid until then. Validation errors are thrown here, before anything is enqueued.
     */
    @Override
    public CompletionStage<ForwardResult> forwardAsync(Batch batch, KvCache kvCache) {
        return pass(batch, kvCache, false, null, null).thenApply(r -> r);
    }

    /**
     * Runs a greedy verification pass of one sequence, rows {@code [last, d1 .. dk]} with logits for every row, and
     * decides acceptance on the device: the accepted length n is the longest prefix of d1..dk equal to the argmax
     * of rows 0..n-1, and the main model's next token is the argmax of row n. Only the k+1 argmax ids and n come
     * back (one copy of k+2 ints). Rolling the caches back to the accepted length stays the caller's job.
     */
    public GreedyVerdict verifyGreedy(Batch batch, KvCache kv) {
        checkVerification(batch, "greedy");
        Result r = joinPass(pass(batch, kv, true, null, null));
        return new GreedyVerdict(r.accepted, r.argmax[r.accepted], r);
    }

    /**
     * Runs a sampled verification pass of one sequence, rows {@code [last, d1 .. dk]} with logits for every row, and
     * decides on the device (see {@link LoadedModel#verifySampledAsync}): {@code sample_probs} makes the main
     * model's k+1 distributions, {@code accept_sampled} tests d1..dk against them and {@code draft.q()}, drawing
     * with {@link CounterRandom} at (seed, position of d_i). Two ints come back. Rolling the caches back stays
     * the caller's job.
     */
    public SampledVerdict verifySampled(Batch batch, KvCache kv, SampledDraft draft) {
        return joinPass(verifySampledAsync(batch, kv, draft).toCompletableFuture());
    }

    /** {@link #verifySampled}, enqueued: the stage completes when the verdict is on the host. */
    @Override
    public CompletionStage<SampledVerdict> verifySampledAsync(Batch batch, KvCache kv, SampledDraft draft) {
        checkVerification(batch, "sampled");
        int k = batch.size() - 1, vocab = c.vocabularySize();
        if (k < 1) throw new IllegalArgumentException("sampled verification needs at least one draft token (rows [last, d1 .. dk]), got " + batch.size() + " row");
        if (draft.q() != null && draft.q().length < k * vocab) {
            throw new IllegalArgumentException("sampled verification of " + k + " draft tokens needs " + k + " draft distributions of "
                    + vocab + " ids (" + (long) k * vocab + " floats), got " + draft.q().length + " floats");
        }
        if (draft.q() == null) {
            if (!(draft.keptBy() instanceof CudaModel owner) || owner.driver != driver) {
                throw new IllegalArgumentException("sampled verification reads kept draft rows only from a model on the same device, got " + draft.keptBy());
            }
            if (owner.c.vocabularySize() != vocab) {
                throw new IllegalArgumentException("kept draft rows have " + owner.c.vocabularySize() + " ids, this model's vocabulary " + vocab);
            }
            if (draft.firstKeptRow() < 0 || draft.firstKeptRow() + k > KEPT_DRAFT_ROWS) {
                throw new IllegalArgumentException("kept draft rows [" + draft.firstKeptRow() + ", " + (draft.firstKeptRow() + k)
                        + ") are outside [0, " + KEPT_DRAFT_ROWS + ")");
            }
            if (owner.keptRows == null) throw new IllegalArgumentException("the draft model has kept no rows yet (sampleDraftAsync fills them)");
        }
        checkTemperature(draft.temperature(), "sampled verification");
        return pass(batch, kv, false, draft, null).thenApply(r -> new SampledVerdict(r.accepted, r.next));
    }

    @Override public boolean samplesOnDevice() { return true; }

    /**
     * Draws the next draft token on the device (see {@link LoadedModel#sampleDraftAsync}): {@code sample_probs}
     * turns the batch's one logit row into q, written to kept row {@code draw.row()}, and {@code accept_sampled}
     * with no draft tokens draws from it at the drafted token's position, with {@link CounterRandom#draftSeed}.
     */
    @Override
    public CompletionStage<DrawnToken> sampleDraftAsync(Batch batch, KvCache kv, DraftDraw draw) {
        if (batch.logitRows().length != 1) {
            throw new IllegalArgumentException("a draft draw needs logits for exactly one row, got rows " + java.util.Arrays.toString(batch.logitRows()));
        }
        if (draw.row() < 0 || draw.row() >= KEPT_DRAFT_ROWS) {
            throw new IllegalArgumentException("kept draft row " + draw.row() + " is outside [0, " + KEPT_DRAFT_ROWS + ")");
        }
        checkTemperature(draw.temperature(), "a draft draw");
        CompletionStage<DrawnToken> drawn = pass(batch, kv, false, null, draw).thenApply(r -> new DrawnToken(r.next, r.top));
        draws++;
        return drawn;
    }

    /** Draft draws enqueued so far (tests: the device path really ran). */
    synchronized long draws() { return draws; }

    private static void checkTemperature(float t, String what) {
        if (!(t > 0) || Float.isInfinite(t)) throw new IllegalArgumentException(what + " needs a positive temperature, got " + t);
    }

    /** Kept row {@code row} as the last draw left it (tests). */
    synchronized float[] keptRow(int row) {
        previous.join();
        int vocab = c.vocabularySize();
        return driver.call(() -> {
            try (PinnedBuffer host = driver.allocatePinned((long) vocab * Float.BYTES)) {
                driver.copyToHost(host, 0, keptRows.floats((long) row * vocab, vocab), stream);
                driver.synchronize(stream);
                float[] out = new float[vocab];
                MemorySegment.copy(host.segment(), ValueLayout.JAVA_FLOAT, 0, out, 0, vocab);
                return out;
            }
        });
    }

    /** A verification batch: one sequence, logits for every row. */
    private static void checkVerification(Batch batch, String what) {
        int n = batch.size();
        int[] rows = batch.logitRows();
        boolean everyRow = rows.length == n;
        for (int i = 0; everyRow && i < n; i++) everyRow = rows[i] == i;
        if (!everyRow) throw new IllegalArgumentException(what + " verification needs logits for every row [last, d1 .. dk], got rows " + java.util.Arrays.toString(rows));
        for (int i = 1; i < n; i++) {
            if (batch.sequences()[i] != batch.sequences()[0]) {
                throw new IllegalArgumentException(what + " verification runs one sequence; row " + i + " is sequence " + batch.sequences()[i]
                        + ", row 0 sequence " + batch.sequences()[0]);
            }
        }
    }

    private static <T> T joinPass(CompletableFuture<T> pass) {
        try {
            return pass.join();
        } catch (CompletionException e) {
            if (e.getCause() instanceof RuntimeException re) throw re;
            if (e.getCause() instanceof Error err) throw err;
            throw e;
        }
    }

    private synchronized CompletableFuture<Result> pass(Batch batch, KvCache kvCache, boolean verify, SampledDraft sampled, DraftDraw draw) {
        if (!(kvCache instanceof CudaKvCache kv) || kv.owner != this) {
            throw new IllegalArgumentException("K/V cache was not made by this model");
        }
        if (kv.keys[0] == null) throw new IllegalStateException("K/V cache is closed");
        try {
            previous.join();
        } catch (RuntimeException ignored) {
            // That pass's caller got its failure; this pass starts from a drained stream either way.
        }
        List<Chunk> chunks = stage(batch, kv.tables);
        Sampling sampling = sampled == null && draw == null ? null : stageSampling(sampled, draw, batch);
        long pass = ++passes;
        int resultRows = batch.logitRows().length;
        Nvtx.Phase phase = drafting || draw != null ? Nvtx.Phase.DRAFT
                : verify || sampled != null ? Nvtx.Phase.VERIFY : batch.size() > 1 ? Nvtx.Phase.PREFILL : Nvtx.Phase.DECODE;
        CompletableFuture<Result> result = driver.call(() -> {
            // Kept draft rows are written on the draft model's stream: wait there for its latest pass (outside any graph).
            if (sampling != null && sampling.qOwner() != null) driver.wait(stream, sampling.qOwner().passDone);
            try (Nvtx.Range range = ranges.open(phase)) {
                if (useGraphs && batch.size() <= LaunchGeometry.MAX_ROWS) replay(new GraphKey(kv, chunks, rowList(batch.logitRows()), verify, sampling), batch, chunks, kv);
                else enqueue(batch, chunks, kv, verify, sampling, stagedInts);
            }
            if (draw != null) {
                int vocab = c.vocabularySize();
                driver.copyOnDevice(keptRows.floats((long) draw.row() * vocab, vocab), probs.floats(0, vocab), stream);
            }
            driver.record(passDone, stream);
            // A device fault surfaces here (the driver's future fails with the CUDA error): name the pass it hit.
            return driver.whenDone(stream).exceptionally(e -> {
                Throwable cause = e instanceof CompletionException ? e.getCause() : e;
                if (cause instanceof DeviceFaultException f) throw new DeviceFaultException(f.error(), "a " + phase.label() + " pass");
                throw e instanceof CompletionException ce ? ce : new CompletionException(e);
            });
        }).thenApply(done -> {
            // hostIds: [accepted (greedy verification only), argmax of result row 0, 1, ...]
            int[] tokenIds = new int[resultRows];
            MemorySegment.copy(hostIds.segment(), ValueLayout.JAVA_INT, Integer.BYTES, tokenIds, 0, resultRows);
            float[] topProbabilities = new float[resultRows];
            MemorySegment.copy(hostTops.segment(), ValueLayout.JAVA_FLOAT, 0, topProbabilities, 0, resultRows);
            if (sampling != null) {
                MemorySegment v = hostVerdict.segment();
                return new Result(pass, tokenIds, topProbabilities, v.get(ValueLayout.JAVA_INT, 0), v.get(ValueLayout.JAVA_INT, Integer.BYTES),
                        v.get(ValueLayout.JAVA_FLOAT, 2 * Integer.BYTES));
            }
            int accepted = verify ? hostIds.segment().get(ValueLayout.JAVA_INT, 0) : -1;
            return new Result(pass, tokenIds, topProbabilities, accepted, -1, Float.NaN);
        });
        previous = result;
        return result;
    }

    /**
     * Validates the batch and writes, into {@link #hostInts}: token ids [n], positions [n], then each run's block
     * table (blocks up to its last position). Grows the pass buffers as needed.
     */
    private List<Chunk> stage(Batch batch, PagedKvCache tables) {
        int n = batch.size(), bs = tables.blockSize();
        int[] tokens = batch.tokens(), positions = batch.positions(), sequences = batch.sequences(), logitRows = batch.logitRows();
        List<Chunk> chunks = new ArrayList<>();
        List<int[]> runTables = new ArrayList<>();
        int tableInts = 0, maxChunks = 1, nextLogit = 0;
        for (int start = 0; start < n; start += maxRows) {
            int rows = Math.min(maxRows, n - start);
            List<Run> runs = new ArrayList<>();
            for (int r = 0; r < rows; ) {
                int seq = sequences[start + r], end = r, last = 0;
                while (end < rows && sequences[start + end] == seq) {
                    int i = start + end, token = tokens[i], pos = positions[i];
                    if (token < 0 || token >= c.vocabularySize()) {
                        throw new IllegalArgumentException("token id " + token + " at row " + i + " is outside the vocabulary (size " + c.vocabularySize() + ")");
                    }
                    if (pos < 0 || pos >= c.contextLength()) {
                        throw new IllegalArgumentException("position " + pos + " at row " + i + " is outside the context length " + c.contextLength());
                    }
                    tables.block(seq, pos);  // throws unless reserved
                    last = Math.max(last, pos);
                    end++;
                }
                int blocks = last / bs + 1;
                int[] table = tables.blockTable(seq, null);
                int[] used = java.util.Arrays.copyOf(table, blocks);
                int chunkCount = LaunchGeometry.attentionChunkCapacity(last + 1);
                runs.add(new Run(r, end - r, 2 * n + tableInts, chunkCount));
                runTables.add(used);
                tableInts += blocks;
                maxChunks = Math.max(maxChunks, chunkCount);
                r = end;
            }
            int first = nextLogit;
            while (nextLogit < logitRows.length && logitRows[nextLogit] < start + rows) nextLogit++;
            chunks.add(new Chunk(start, rows, runs, first, nextLogit));
        }

        int ints = 2 * n + tableInts;
        if (hostInts == null || hostInts.segment().byteSize() < (long) ints * Integer.BYTES) {
            if (hostInts != null) {
                dropGraphs();
                hostInts.close();
                deviceInts.close();
            }
            int capacity = Math.max(ints, 1024);
            hostInts = driver.allocatePinned((long) capacity * Integer.BYTES);
            deviceInts = driver.allocate((long) capacity * Integer.BYTES);
        }
        stagedInts = ints;
        MemorySegment h = hostInts.segment();
        MemorySegment.copy(tokens, 0, h, ValueLayout.JAVA_INT, 0, n);
        MemorySegment.copy(positions, 0, h, ValueLayout.JAVA_INT, (long) n * Integer.BYTES, n);
        long at = 2L * n * Integer.BYTES;
        for (int[] t : runTables) {
            MemorySegment.copy(t, 0, h, ValueLayout.JAVA_INT, at, t.length);
            at += (long) t.length * Integer.BYTES;
        }

        int results = Math.max(1, logitRows.length), vocab = c.vocabularySize();
        if (ids == null || ids.byteSize() < (long) (results + 1) * Integer.BYTES) {
            if (ids != null) {
                dropGraphs();
                ids.close();
                hostIds.close();
                tops.close();
                hostTops.close();
                logits.close();
            }
            int capacity = Math.max(results, LaunchGeometry.MAX_ROWS);
            // One int ahead of the ids: the verification's accepted length, so that one copy brings back both.
            ids = driver.allocate((long) (capacity + 1) * Integer.BYTES);
            hostIds = driver.allocatePinned((long) (capacity + 1) * Integer.BYTES);
            tops = driver.allocate((long) capacity * Float.BYTES);
            hostTops = driver.allocatePinned((long) capacity * Float.BYTES);
            logits = driver.allocate((long) capacity * vocab * Float.BYTES);
        }
        long partials = (long) maxRows * c.heads() * maxChunks;
        if (partialMax == null || partialMax.byteSize() < partials * Float.BYTES) {
            if (partialMax != null) {
                dropGraphs();
                partialOut.close();
                partialMax.close();
                partialSum.close();
            }
            partialOut = driver.allocate(partials * c.headDim() * Float.BYTES);
            partialMax = driver.allocate(partials * Float.BYTES);
            partialSum = driver.allocate(partials * Float.BYTES);
        }
        if (gemm != null && gemmActivations == null && Math.min(n, maxRows) >= gemmRows && Math.min(n, maxRows) > LaunchGeometry.MAX_ROWS) {
            allocateGemmScratch();
        }
        return chunks;
    }

    /**
     * Writes a sampled verification's seed, position of d1 and draft distributions into {@link #hostSampling},
     * growing the sampling buffers as needed.
     */
    private Sampling stageSampling(SampledDraft draft, DraftDraw draw, Batch batch) {
        int k = draft != null ? batch.size() - 1 : 0, vocab = c.vocabularySize();
        boolean upload = draft != null && draft.q() != null;
        long bytes = SAMPLING_META_BYTES + (upload ? (long) k * vocab * Float.BYTES : 0);
        if (hostSampling == null || hostSampling.segment().byteSize() < bytes) {
            if (hostSampling != null) {
                dropGraphs();
                hostSampling.close();
                deviceSampling.close();
                probs.close();
            }
            int rows = Math.max(k, LaunchGeometry.MAX_ROWS - 1);
            long capacity = SAMPLING_META_BYTES + (long) rows * vocab * Float.BYTES;
            hostSampling = driver.allocatePinned(capacity);
            deviceSampling = driver.allocate(capacity);
            probs = driver.allocate((long) (rows + 1) * vocab * Float.BYTES);
        }
        if (draw != null && keptRows == null) keptRows = own(driver.allocate((long) KEPT_DRAFT_ROWS * vocab * Float.BYTES));
        // A verification's draws sit at d1's position; a draft draw's at the drafted token's, after its logit row.
        long seed = draft != null ? draft.seed() : CounterRandom.draftSeed(draw.seed());
        int position = draft != null ? batch.positions()[1] : batch.positions()[batch.logitRows()[0]] + 1;
        MemorySegment h = hostSampling.segment();
        h.set(ValueLayout.JAVA_INT, 0, (int) seed);
        h.set(ValueLayout.JAVA_INT, Integer.BYTES, (int) (seed >>> 32));
        h.set(ValueLayout.JAVA_INT, 2 * Integer.BYTES, position);
        if (upload) MemorySegment.copy(draft.q(), 0, h, ValueLayout.JAVA_FLOAT, SAMPLING_META_BYTES, k * vocab);
        if (draw != null) return new Sampling(1f / draw.temperature(), draw.topK(), draw.topP(), draw.minP(), null, 0, true);
        CudaModel owner = upload ? null : (CudaModel) draft.keptBy();
        return new Sampling(1f / draft.temperature(), draft.topK(), draft.topP(), draft.minP(), owner, draft.firstKeptRow(), false);
    }

    /**
     * Runs the pass as a CUDA graph: captured the first time its shape is seen, replayed after. Everything a
     * graph fixes is in the key (the cache, the chunks with their runs, table offsets and attention splits, the
     * logit rows, verification or not) or in buffers that only {@link #stage} replaces, which drops the graphs.
     * The staged ints are copied whole (their capacity), so a longer block table needs no new graph.
     */
    private void replay(GraphKey key, Batch batch, List<Chunk> chunks, CudaKvCache kv) {
        GpuGraph graph = graphs.get(key);
        if (graph == null) {
            if (graphs.size() >= MAX_GRAPHS) dropGraphs();
            int allInts = Math.toIntExact(deviceInts.byteSize() / Integer.BYTES);
            try {
                graph = driver.capture(stream, () -> enqueue(batch, chunks, kv, key.verify(), key.sampling(), allInts));
            } catch (RuntimeException e) {
                // A driver that cannot capture this pass still runs it: graphs only save launch overhead.
                System.err.println("tandem: CUDA graph capture failed (" + e.getMessage() + "); running passes without graphs");
                useGraphs = false;
                dropGraphs();
                enqueue(batch, chunks, kv, key.verify(), key.sampling(), stagedInts);
                return;
            }
            graphs.put(key, graph);
            graphCaptures++;
        }
        driver.launch(graph, stream);
        graphLaunches++;
    }

    private static List<Integer> rowList(int[] rows) {
        List<Integer> out = new ArrayList<>(rows.length);
        for (int r : rows) out.add(r);
        return out;
    }

    private void dropGraphs() {
        for (GpuGraph g : graphs.values()) g.close();
        graphs.clear();
    }

    /** This model's stream: all its passes run there, in order. */
    GpuStream stream() { return stream; }

    /** The event recorded after the latest pass's work; {@link GpuDriver#isDone} says whether the device finished it. */
    GpuEvent passEvent() { return passDone; }

    /** Turns CUDA graphs for passes of up to 17 rows on or off (default: on; system property {@code tandem.cudaGraphs}). */
    synchronized void useGraphs(boolean on) {
        previous.join();
        useGraphs = on;
        if (!on) dropGraphs();
    }

    /** Graphs captured and graph launches so far (tests: a replay really happened). */
    synchronized long[] graphCounts() { return new long[] {graphCaptures, graphLaunches}; }

    /** All of a pass's device work, in stream order. Runs on the driver's owner thread. */
    private void enqueue(Batch batch, List<Chunk> chunks, CudaKvCache kv, boolean verify, Sampling sampling, int copyInts) {
        int n = batch.size(), h = c.hiddenSize(), qDim = c.qDim(), kvDim = c.kvDim(), vocab = c.vocabularySize();
        int bs = kv.tables.blockSize();
        float eps = c.rmsNormEps();
        int neox = c.ropeLayout() == RopeLayout.HALVES ? 1 : 0;
        driver.copyToDevice(deviceInts.ints(0, copyInts), hostInts, 0, stream);
        for (Chunk chunk : chunks) {
            int rows = chunk.rows();
            DeviceBuffer tokens = deviceInts.ints(chunk.start(), rows);
            launch(Kernel.embedding(embedding.type()), LaunchGeometry.embedding(embedding.type(), h, rows),
                    embedding.data(), tokens, x, h, vocab);
            for (int l = 0; l < layers.length; l++) {
                Layer L = layers[l];
                // The attention block's norm; for layers after the first the previous down projection did it.
                if (l == 0) launch(Kernel.RMSNORM, LaunchGeometry.rmsnorm(rows), x, L.attnNorm(), xb, h, eps);
                project(xb, rows, new Projection(L.wq(), L.bq(), q), new Projection(L.wk(), L.bk(), k), new Projection(L.wv(), L.bv(), v));
                // Every row's K/V goes in before any row attends: rows of one sequence see each other causally.
                for (Run run : chunk.runs()) {
                    launch(Kernel.ropeKvAppend(kv.type), LaunchGeometry.ropeKvAppend(run.rows()),
                            q.floats((long) run.row() * qDim, (long) run.rows() * qDim),
                            k.floats((long) run.row() * kvDim, (long) run.rows() * kvDim), v.floats((long) run.row() * kvDim, (long) run.rows() * kvDim),
                            kv.keys[l], kv.values[l], table(run), deviceInts.ints(n + chunk.start() + run.row(), run.rows()), ropeFactors,
                            c.heads(), c.kvHeads(), c.headDim(), c.ropeDimensions(), c.ropeTheta(), neox, bs);
                }
                for (Run run : chunk.runs()) {
                    DeviceBuffer runPositions = deviceInts.ints(n + chunk.start() + run.row(), run.rows());
                    launch(Kernel.attentionPartial(kv.type), LaunchGeometry.attentionPartial(run.maxChunks(), c.kvHeads(), c.headDim()),
                            q.floats((long) run.row() * qDim, (long) run.rows() * qDim), kv.keys[l], kv.values[l], table(run), runPositions,
                            partialOut, partialMax, partialSum, run.rows(), c.heads(), c.kvHeads(), c.headDim(), bs, run.maxChunks(), attentionScale,
                            att.floats((long) run.row() * qDim, (long) run.rows() * qDim), attentionDone);
                }
                // x += attention output, then the FFN's norm; x += FFN output, then the next layer's (or the
                // output) norm: each in the projection's own launch.
                projectIntoResidual(att, rows, new Projection(L.wo(), null, proj), new ResidualNorm(x, L.ffnNorm(), xb));
                gatedProject(xb, rows, L.gate(), L.up(), hidden);
                DeviceBuffer nextNorm = l + 1 < layers.length ? layers[l + 1].attnNorm() : outputNorm;
                projectIntoResidual(hidden, rows, new Projection(L.down(), null, proj), new ResidualNorm(x, nextNorm, xb));
            }
            outputHead(batch.logitRows(), chunk);
        }
        int results = batch.logitRows().length;
        if (results > 0) {
            // With each id, the top token's probability (a greedy draft's p-min): no logits cross for either.
            launch(Kernel.ARGMAX, LaunchGeometry.argmax(results), logits, ids.ints(1, results), tops.floats(0, results), vocab);
            driver.copyToHost(hostTops, 0, tops.floats(0, results), stream);
            if (verify) {
                // Draft tokens d1..dk are the pass's own token ids of rows 1..k, already on the device.
                try (Nvtx.Range range = ranges.open(Nvtx.Phase.ACCEPT)) {
                    launch(Kernel.ACCEPT_GREEDY, LaunchGeometry.acceptGreedy(), deviceInts.ints(1, Math.max(results - 1, 1)), ids, results - 1);
                }
                driver.copyToHost(hostIds, 0, ids.ints(0, results + 1), stream);
            } else if (sampling != null && sampling.draw()) {
                // A draft draw: q = the chain's distribution of the one logit row; accept_sampled with no draft tokens
                // draws from it (verdict = (0, token)). The pass then copies q to its kept row.
                DeviceBuffer q = probs.floats(0, vocab);
                driver.copyToDevice(deviceSampling.slice(0, SAMPLING_META_BYTES), hostSampling, 0, stream);
                launch(Kernel.SAMPLE_PROBS, LaunchGeometry.sampleProbs(1), logits, q, vocab,
                        sampling.invTemperature(), sampling.topK(), sampling.topP(), sampling.minP(), verdict.floats(2, 1));
                launch(Kernel.ACCEPT_SAMPLED, LaunchGeometry.acceptSampled(1), q, q, deviceInts.ints(0, 1), deviceSampling.ints(0, 3), verdict, 0, vocab);
                driver.copyToHost(hostIds, Integer.BYTES, ids.ints(1, results), stream);
                driver.copyToHost(hostVerdict, 0, verdict, stream);
            } else if (sampling != null) {
                int k = results - 1;
                long qBytes = (long) k * vocab * Float.BYTES;
                boolean kept = sampling.qOwner() != null;
                DeviceBuffer q = kept ? sampling.qOwner().keptRows.floats((long) sampling.qRow() * vocab, (long) k * vocab)
                        : deviceSampling.slice(SAMPLING_META_BYTES, qBytes);
                try (Nvtx.Range range = ranges.open(Nvtx.Phase.ACCEPT)) {
                    driver.copyToDevice(deviceSampling.slice(0, SAMPLING_META_BYTES + (kept ? 0 : qBytes)), hostSampling, 0, stream);
                    launch(Kernel.SAMPLE_PROBS, LaunchGeometry.sampleProbs(results), logits, probs, vocab,
                            sampling.invTemperature(), sampling.topK(), sampling.topP(), sampling.minP(), null);
                    // Draft tokens d1..dk are the pass's own token ids of rows 1..k, already on the device.
                    launch(Kernel.ACCEPT_SAMPLED, LaunchGeometry.acceptSampled(1), probs, q,
                            deviceInts.ints(1, k), deviceSampling.ints(0, 3), verdict, k, vocab);
                }
                driver.copyToHost(hostIds, Integer.BYTES, ids.ints(1, results), stream);
                driver.copyToHost(hostVerdict, 0, verdict, stream);
            } else {
                driver.copyToHost(hostIds, Integer.BYTES, ids.ints(1, results), stream);
            }
        }
    }

    /** Logits of the chunk's asked rows into {@link #logits} rows {@code [firstLogit, endLogit)}. */
    private void outputHead(int[] logitRows, Chunk chunk) {
        int count = chunk.endLogit() - chunk.firstLogit(), h = c.hiddenSize(), vocab = c.vocabularySize();
        if (count == 0) return;
        int firstRow = logitRows[chunk.firstLogit()] - chunk.start();
        boolean contiguous = logitRows[chunk.endLogit() - 1] - logitRows[chunk.firstLogit()] == count - 1;
        DeviceBuffer in;
        if (contiguous) {
            in = xb.floats((long) firstRow * h, (long) count * h);
        } else {
            for (int i = 0; i < count; i++) {
                int row = logitRows[chunk.firstLogit() + i] - chunk.start();
                driver.copyOnDevice(gathered.floats((long) i * h, h), xb.floats((long) row * h, h), stream);
            }
            in = gathered;
        }
        project(in, count, new Projection(output, null, logits.floats((long) chunk.firstLogit() * vocab, (long) count * vocab)));
    }

    private DeviceBuffer table(Run run) {
        return deviceInts.slice((long) run.tableOffset() * Integer.BYTES, deviceInts.byteSize() - (long) run.tableOffset() * Integer.BYTES);
    }

    /** Chunks of at least this many rows multiply through the {@link Gemm} when there is one (default 64, {@code tandem.gemmRows}). */
    int gemmRows() { return gemmRows; }

    /** Sets {@link #gemmRows()} (tests: a low threshold runs short prompts through the GEMM); chunks of 17 rows or fewer never use it. */
    synchronized void gemmRows(int rows) {
        previous.join();
        dropGraphs();
        gemmRows = rows;
    }

    /** GEMM calls enqueued so far (tests: the GEMM path really ran). */
    synchronized long gemmCalls() { return gemmCalls; }

    /**
     * y = x · Wᵀ for {@code rows} rows as GEMMs: x narrowed to 16 bits once, W's rows decoded to 16 bits a slice at
     * a time (F16/BF16 weights of the chosen precision are read as stored), each slice one GEMM into its columns of y.
     */
    private void gemm(Matrix m, DeviceBuffer in, DeviceBuffer out, int rows) {
        int k = m.columns(), n = m.rows();
        // BF16 weights multiply in BF16, everything else in F16 (more mantissa; activations stay well inside its range).
        Gemm.Precision precision = m.type() == TensorType.BF16 ? Gemm.Precision.BF16 : Gemm.Precision.F16;
        boolean asStored = m.type() == TensorType.F16 || m.type() == TensorType.BF16;
        long aBytes = (long) rows * k * 2;
        int slice = gemmSlice(m);
        DeviceBuffer a = gemmActivations.slice(0, aBytes);
        launch(Kernel.NARROW16, LaunchGeometry.narrow16(rows * k), in.floats(0, (long) rows * k), a, rows * k, precision.bf16());
        for (int n0 = 0; n0 < n; n0 += slice) {
            int count = Math.min(slice, n - n0);
            DeviceBuffer b;
            if (asStored) {
                b = m.data().slice((long) n0 * k * 2, (long) count * k * 2);
            } else {
                b = gemmWeights.slice(0, (long) count * k * 2);
                launch(Kernel.dequantize16(m.type()), LaunchGeometry.dequantize16(m.type(), k, count), m.data(), b, k, n0, precision.bf16());
            }
            gemm.multiply(stream, precision, rows, count, k, a, b, out.floats(n0, (long) (rows - 1) * n + count), n);
            gemmCalls++;
        }
    }

    /** Whether a chunk of {@code rows} rows multiplies through the {@link Gemm} instead of matvec launches. */
    private boolean usesGemm(int rows) { return gemm != null && rows >= gemmRows && rows > LaunchGeometry.MAX_ROWS; }

    /**
     * out_j = x · W_jᵀ (+ bias_j) for {@code rows} rows: one GEMM per matrix for a long chunk when there is a
     * {@link Gemm}, else grouped matvec launches of at most {@link LaunchGeometry#MAX_ROWS} rows, consecutive
     * matrices of one type and row length (a layer's Q, K and V, up to three) in one launch, so each launch fills
     * the device with all their rows.
     */
    private void project(DeviceBuffer in, int rows, Projection... ps) { projectGroups(in, rows, null, ps); }

    /**
     * The projection, then residual += its output and normOut = rmsnorm(residual) * weight: in the matvec launches'
     * epilogue (their last block), or for a GEMM chunk by rmsnorm_residual after it.
     */
    private void projectIntoResidual(DeviceBuffer in, int rows, Projection p, ResidualNorm norm) {
        if (usesGemm(rows)) {
            projectGroups(in, rows, null, p);
            launch(Kernel.RMSNORM_RESIDUAL, LaunchGeometry.rmsnorm(rows), norm.residual(), p.out(), norm.weight(), norm.normOut(),
                    p.m().rows(), c.rmsNormEps());
            return;
        }
        projectGroups(in, rows, norm, p);
    }

    /** {@link #project}, with the residual epilogue of {@code norm} (one projection only) when it is not null. */
    private void projectGroups(DeviceBuffer in, int rows, ResidualNorm norm, Projection... ps) {
        if (usesGemm(rows)) {
            for (Projection p : ps) {
                gemm(p.m(), in, p.out(), rows);
                if (p.bias() != null) {
                    int n = p.m().rows();
                    launch(Kernel.BIAS_ADD, LaunchGeometry.elementwise(rows * n), p.out(), p.bias(), n, rows * n);
                }
            }
            return;
        }
        for (int first = 0; first < ps.length; ) {
            int end = first + 1;
            while (end < ps.length && end - first < 3 && ps[end].m().launchesWith(ps[first].m())) end++;
            Projection[] group = Arrays.copyOfRange(ps, first, end);
            Matrix m = group[0].m();
            int total = 0;
            for (Projection p : group) total += p.m().rows();
            for (int r0 = 0; r0 < rows; r0 += LaunchGeometry.MAX_ROWS) {
                int r = Math.min(LaunchGeometry.MAX_ROWS, rows - r0);
                Object[] args = new Object[20];
                for (int j = 0; j < 3; j++) {
                    Projection p = j < group.length ? group[j] : null;
                    args[j] = p == null ? null : p.m().data();
                    args[4 + j] = p == null ? null : p.bias();
                    args[7 + j] = p == null ? null : p.out().floats((long) r0 * p.m().rows(), (long) r * p.m().rows());
                    args[11 + j] = p == null ? 0 : p.m().rows();
                }
                args[3] = in.floats((long) r0 * m.columns(), (long) r * m.columns());
                args[10] = m.columns();
                args[14] = r;
                if (norm != null) {  // one matrix: y0 = [r][n0]
                    int n0 = m.rows();
                    args[15] = norm.residual().floats((long) r0 * n0, (long) r * n0);
                    args[16] = norm.weight();
                    args[17] = norm.normOut().floats((long) r0 * n0, (long) r * n0);
                    args[19] = blocksDone;
                }
                args[18] = c.rmsNormEps();
                launch(Kernel.matvec(m.type(), r), LaunchGeometry.matvec(m.type(), m.columns(), total, r), args);
            }
            first = end;
        }
    }

    /**
     * out = silu(x · gateᵀ) * (x · upᵀ) for {@code rows} rows: one gated matvec launch for a pass of up to
     * {@link LaunchGeometry#MATVEC_GATED_MAX_ROWS} rows when the two matrices share type and row length, else two
     * products and the swiglu kernel.
     */
    private void gatedProject(DeviceBuffer in, int rows, Matrix gateW, Matrix upW, DeviceBuffer out) {
        if (rows > LaunchGeometry.MATVEC_GATED_MAX_ROWS || !gateW.launchesWith(upW)) {
            project(in, rows, new Projection(gateW, null, gate));
            project(in, rows, new Projection(upW, null, up));
            int n = gateW.rows();
            launch(Kernel.SWIGLU, LaunchGeometry.elementwise(rows * n), gate, up, out, rows * n);
            return;
        }
        int k = gateW.columns(), n = gateW.rows();
        launch(Kernel.matvecSwiglu(gateW.type(), rows), LaunchGeometry.matvecGated(gateW.type(), k, n, rows), gateW.data(), upW.data(), in, out, k, n, rows);
    }

    private void launch(Kernel kernel, LaunchDims dims, Object... args) { driver.launch(kernel, dims, stream, args); }

    /** Weight rows decoded per GEMM slice of {@code m}. */
    private static int gemmSlice(Matrix m) { return (int) Math.max(1, Math.min(m.rows(), GEMM_SLICE_ELEMENTS / m.columns())); }

    /** 16-bit scratch for the widest activation row of a chunk and for a slice of the largest weight matrix. */
    private void allocateGemmScratch() {
        long widest = Math.max(Math.max(c.hiddenSize(), c.qDim()), c.ffnSize());
        long weights = (long) gemmSlice(output) * output.columns();
        for (Layer L : layers) {
            for (Matrix m : new Matrix[] {L.wq(), L.wk(), L.wv(), L.wo(), L.gate(), L.up(), L.down()}) {
                weights = Math.max(weights, (long) gemmSlice(m) * m.columns());
            }
        }
        gemmActivations = own(driver.allocate((long) maxRows * widest * 2));
        gemmWeights = own(driver.allocate(weights * 2));
    }

    /** Copies logit rows {@code [0, rows)} of pass {@code pass} to the host. */
    private synchronized float[] fetchLogits(long pass, int rows) {
        if (pass != passes) {
            throw new IllegalStateException("the logits of pass " + pass + " were overwritten by pass " + passes
                    + "; copy what must outlive a pass before the next forward");
        }
        int vocab = c.vocabularySize();
        long bytes = (long) rows * vocab * Float.BYTES;
        return driver.call(() -> {
            if (hostLogits == null || hostLogits.segment().byteSize() < bytes) {
                if (hostLogits != null) hostLogits.close();
                hostLogits = driver.allocatePinned(bytes);
            }
            driver.copyToHost(hostLogits, 0, logits.slice(0, bytes), stream);
            driver.synchronize(stream);
            float[] out = new float[rows * vocab];
            MemorySegment.copy(hostLogits.segment(), ValueLayout.JAVA_FLOAT, 0, out, 0, out.length);
            return out;
        });
    }

    /** The ids came back with the pass; logits are copied on first use. */
    private final class Result implements CudaForwardResult {
        private final long pass;
        private final int[] argmax;
        /** Each row's top-token probability, from the device with the ids. */
        private final float[] tops;
        /** Verifications: the accepted length; sampled ones also the next token (else -1). */
        private final int accepted, next;
        /** A draft draw's top-token probability (else unused). */
        private final float top;
        private float[] values;

        Result(long pass, int[] argmax, float[] tops, int accepted, int next, float top) {
            this.pass = pass;
            this.argmax = argmax;
            this.tops = tops;
            this.accepted = accepted;
            this.next = next;
            this.top = top;
        }

        @Override public int[] argmaxIds() { return argmax.clone(); }

        private float[] values() {
            if (values == null) values = fetchLogits(pass, argmax.length);
            return values;
        }

        @Override public int rows() { return argmax.length; }

        @Override public int vocabularySize() { return c.vocabularySize(); }

        @Override public float logit(int row, int token) { return values()[row * c.vocabularySize() + token]; }

        @Override
        public void copyLogits(int row, float[] dst) { System.arraycopy(values(), row * c.vocabularySize(), dst, 0, c.vocabularySize()); }

        /** From the device's argmax kernel: ties to the lower id, as {@link ForwardResult#argmax} says. */
        @Override public int argmax(int row) { return argmax[row]; }

        /** From the argmax kernel, which also sums the row's softmax. */
        @Override public float topProbability(int row) { return tops[row]; }
    }

    @Override
    public synchronized void close() {
        try {
            previous.join();
        } catch (RuntimeException ignored) {
            // closing anyway
        }
        dropGraphs();
        for (AutoCloseable r : new AutoCloseable[] {hostInts, deviceInts, hostIds, ids, tops, hostTops, logits, partialOut, partialMax, partialSum, hostLogits,
                hostSampling, deviceSampling, probs}) {
            closeQuietly(r);
        }
        for (int i = owned.size() - 1; i >= 0; i--) closeQuietly(owned.get(i));
        owned.clear();
    }

    private static void closeQuietly(AutoCloseable r) {
        if (r == null) return;
        try {
            r.close();
        } catch (Exception ignored) {
            // freeing is best effort at close
        }
    }
}
