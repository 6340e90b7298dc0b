package dev.tandem.runtime.cuda;

import dev.tandem.model.ModelConfig;
import dev.tandem.model.ModelFile;
import dev.tandem.model.RopeLayout;
import dev.tandem.runtime.Batch;
import dev.tandem.runtime.DeviceSampling;
import dev.tandem.runtime.DeviceSampling.DraftDraw;
import dev.tandem.runtime.DeviceSampling.Verification;
import dev.tandem.runtime.ForwardResult;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.KvType;
import dev.tandem.runtime.LoadOptions;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.runtime.PagedKvCache;
import dev.tandem.runtime.cuda.PassBuffers.Results;
import dev.tandem.runtime.cuda.PassLayout.Chunk;
import dev.tandem.runtime.cuda.PassLayout.Run;
import dev.tandem.runtime.cuda.Projections.Projection;
import dev.tandem.runtime.cuda.Projections.ResidualNorm;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.function.Supplier;

/**
 * A Llama/Qwen2 transformer on a {@link GpuDriver}: the forward pass of {@code runtime.cpu.CpuModel}, as a
 * sequence of kernel launches on this model's own stream.
 *
 * <p>A pass: the host validates the batch and stages token ids, positions and the block tables of the rows'
 * sequences in one pinned buffer (one upload, {@link PassLayout}); the stream then runs embedding, per layer
 * RMSNorm, Q/K/V (+bias), RoPE, K/V append into the paged cache, attention, output projection, FFN, each residual
 * add fused into the next RMSNorm, and the head for the asked rows; then argmax on the device, and only the ids
 * come back by default (logits are copied when first read). Batches run in chunks of {@code maxBatchRows} rows
 * through all layers; matvec launches take at most {@link LaunchGeometry#MAX_ROWS} rows, so a chunk of 17 rows or
 * fewer reads each weight once. Passes of up to 17 rows run as CUDA graphs ({@link PassGraphs}).
 *
 * <p>Bitwise contract: every kernel reduces in an order fixed by the reduction length, so a row's logits have
 * the same bits whatever the other rows of its pass (see {@code kernels/README.md}). Long prompt chunks may leave
 * it through the {@link PrefillGemm}.
 *
 * <p>Weights are uploaded once ({@link CudaWeights}). The K/V cache holds F32, F16 or BF16
 * ({@link LoadOptions#kvType()}); 16-bit values are rounded to nearest even when appended, as the CPU backend does.
 *
 * <p>Speculative verification can finish on the device: greedy ({@link #verifyGreedy}), the pass's argmax ids and
 * the accepted length come back in one copy of k+2 ints; sampled, through {@link #deviceSampling()}
 * ({@link CudaSampling}), two ints a verified sequence come back, for one sequence or several in one pass.
 */
public final class CudaModel implements LoadedModel {
    /** The outcome of {@link #verifyGreedy}: {@code accepted} draft tokens agree, then the main model's {@code next}. */
    public record GreedyVerdict(int accepted, int next, CudaForwardResult pass) {}

    private final GpuDriver driver;
    private final ModelConfig c;
    private final KvType kvType;
    private final int maxRows;
    private final float attentionScale;
    /** "verify kjv-main", "draft kjv-draft", ...: this model's NVTX ranges. */
    private final Nvtx.Ranges ranges;
    /** Whether this model drafts for another ({@link LoadOptions#draft()}): its passes are "draft" ranges. */
    private final boolean drafting;
    private final GpuStream stream;
    /** Recorded on {@link #stream} after each pass's work: the pass is done on the device when it is reached. */
    private final GpuEvent passDone;
    private final PassGraphs graphs;
    private final CudaWeights weights;
    private final PassBuffers buffers;
    private final PrefillGemm prefillGemm;
    private final Projections projections;
    private final CudaSampling sampling;
    private CompletableFuture<?> previous = CompletableFuture.completedFuture(null);
    private long passes;
    private boolean closed;

    CudaModel(GpuDriver driver, Gemm gemm, ModelFile file, LoadOptions options) {
        String name = nameOf(file);
        // Before anything is allocated: a model that does not fit fails here, leaving the device as it was.
        DeviceMemoryPlan.of(file, options, gemm != null).requireFree(driver.facts(), "model '" + name + "'");
        this.ranges = Nvtx.get().forModel(name);
        this.drafting = options.draft();
        this.driver = driver;
        this.c = file.config();
        this.kvType = options.kvType();
        this.maxRows = options.maxBatchRows();
        this.attentionScale = 1.0f / (float) Math.sqrt(c.headDim());
        this.stream = driver.createStream();
        this.graphs = new PassGraphs(driver, stream);
        try {
            this.passDone = driver.createEvent();
            try (DeviceUpload upload = new DeviceUpload(driver, stream)) {
                this.weights = new CudaWeights(upload, file);
                this.buffers = new PassBuffers(driver, upload, c, maxRows, graphs::drop);
            }
            this.prefillGemm = new PrefillGemm(driver, gemm, stream, c, maxRows, weights.projected());
            this.projections = new Projections(driver, stream, prefillGemm, buffers, c.rmsNormEps());
            this.sampling = new CudaSampling(this, driver, stream, ranges, graphs::drop);
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    /** The file name without its extension ("kjv-main-q8_0"), a folder's name as is: how ranges and messages name the model. */
    static String nameOf(ModelFile file) {
        String name = file.path().toAbsolutePath().normalize().getFileName().toString();
        int dot = name.lastIndexOf('.');
        return dot > 0 && !Files.isDirectory(file.path()) ? name.substring(0, dot) : name;
    }

    /** This model's NVTX ranges (its K/V cache names rollbacks with them). */
    Nvtx.Ranges nvtxRanges() { return ranges; }

    /** This model's stream: all its passes run there, in order. */
    GpuStream stream() { return stream; }

    /** The event recorded after the latest pass's work; {@link GpuDriver#isDone} says whether the device finished it. */
    GpuEvent passEvent() { return passDone; }

    @Override public ModelConfig config() { return c; }

    @Override public long kvBytesPerPosition() { return c.kvBytesPerPosition(kvType.bytes()); }

    @Override
    public KvCache createKvCache(PagedKvCache tables) { return new CudaKvCache(this, driver, tables, kvType, c.layers(), c.kvDim()); }

    /** Every CUDA model samples on its device. */
    @Override public Optional<DeviceSampling> deviceSampling() { return Optional.of(sampling); }

    /** {@link #deviceSampling()} as what it is (tests). */
    CudaSampling sampling() { return sampling; }

    @Override
    public ForwardResult forward(Batch batch, KvCache kv) { return joinPass(pass(batch, kv, false, null, null)); }

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
        PassLayout.requireVerification(batch, "greedy");
        PassResult r = joinPass(pass(batch, kv, true, null, null));
        return new GreedyVerdict(r.accepted(), r.argmax(r.accepted()), r);
    }

    /** The pass's outcome, or the failure it ended with as thrown by the pass itself. */
    static <T> T joinPass(CompletableFuture<T> pass) {
        try {
            return pass.join();
        } catch (CompletionException e) {
            if (e.getCause() instanceof RuntimeException re) throw re;
            if (e.getCause() instanceof Error err) throw err;
            throw e;
        }
    }

    /**
     * Stages and enqueues one pass: {@code verify} decides greedy acceptance on the device, {@code sampled} the sampled
     * verifications of one or more sequences, {@code draw} a draft draw (at most one of the three).
     */
    synchronized CompletableFuture<PassResult> pass(Batch batch, KvCache kvCache, boolean verify, List<Verification> sampled, DraftDraw draw) {
        if (!(kvCache instanceof CudaKvCache kv) || kv.owner != this) {
            throw new IllegalArgumentException("K/V cache was not made by this model");
        }
        if (kv.keys[0] == null) throw new IllegalStateException("K/V cache is closed");
        awaitPrevious();
        PassLayout layout = PassLayout.of(batch, kv.tables, c, maxRows);
        buffers.stage(batch, layout);
        prefillGemm.prepare(batch.size());
        CudaSampling.Step step = sampled == null && draw == null ? null : sampling.stage(sampled, draw, batch);
        long pass = ++passes;
        int resultRows = batch.logitRows().length;
        Nvtx.Phase phase = drafting || draw != null ? Nvtx.Phase.DRAFT
                : verify || sampled != null ? Nvtx.Phase.VERIFY : batch.size() > 1 ? Nvtx.Phase.PREFILL : Nvtx.Phase.DECODE;
        CompletableFuture<PassResult> result = driver.call(() -> {
            try {
                return enqueuePass(batch, kv, verify, layout, step, draw, phase);
            } catch (DeviceFaultException f) {     // met while enqueueing: a fault of an earlier pass, named by this one
                throw new DeviceFaultException(f.error(), "a " + phase.label() + " pass");
            }
        }).thenApply(done -> {
            // hostIds: [accepted (greedy verification only), argmax of result row 0, 1, ...]
            Results r = buffers.results();
            int[] tokenIds = new int[resultRows];
            MemorySegment.copy(r.hostIds().segment(), ValueLayout.JAVA_INT, Integer.BYTES, tokenIds, 0, resultRows);
            float[] topProbabilities = new float[resultRows];
            MemorySegment.copy(r.hostTops().segment(), ValueLayout.JAVA_FLOAT, 0, topProbabilities, 0, resultRows);
            if (step != null && step.draw()) {
                int[] v = sampling.verdicts(1);
                return new PassResult(this, pass, tokenIds, topProbabilities, v[0], v[1], sampling.drawnTopProbability(), null);
            }
            if (step != null) return new PassResult(this, pass, tokenIds, topProbabilities, -1, -1, Float.NaN, sampling.verdicts(step.sequences()));
            int accepted = verify ? r.hostIds().segment().get(ValueLayout.JAVA_INT, 0) : -1;
            return new PassResult(this, pass, tokenIds, topProbabilities, accepted, -1, Float.NaN, null);
        });
        previous = result;
        return result;
    }

    /** Enqueues the pass on the driver's owner thread; the future completes when the stream has run it. */
    private CompletableFuture<Void> enqueuePass(Batch batch, CudaKvCache kv, boolean verify, PassLayout layout, CudaSampling.Step step,
                                                DraftDraw draw, Nvtx.Phase phase) {
        if (step != null) sampling.awaitKeptRows(step);
        try (Nvtx.Range range = ranges.open(phase)) {
            if (graphs.enabled() && batch.size() <= LaunchGeometry.MAX_ROWS) {
                // A graph copies the staged ints whole (their capacity), so a longer block table needs no new graph.
                int allInts = Math.toIntExact(buffers.ints().device().byteSize() / Integer.BYTES);
                graphs.run(new PassGraphs.Key(kv, layout.chunks(), Arrays.stream(batch.logitRows()).boxed().toList(), verify, step),
                        () -> enqueue(batch, layout, kv, verify, step, allInts),
                        () -> enqueue(batch, layout, kv, verify, step, layout.stagedInts()));
            } else {
                enqueue(batch, layout, kv, verify, step, layout.stagedInts());
            }
        }
        if (draw != null) sampling.keep(draw);
        driver.record(passDone, stream);
        // A device fault surfaces here (the driver's future fails with the CUDA error): name the pass it hit.
        return driver.whenDone(stream).exceptionally(e -> {
            Throwable cause = e instanceof CompletionException ? e.getCause() : e;
            if (cause instanceof DeviceFaultException f) throw new DeviceFaultException(f.error(), "a " + phase.label() + " pass");
            throw e instanceof CompletionException ce ? ce : new CompletionException(e);
        });
    }

    /** All of a pass's device work, in stream order. Runs on the driver's owner thread. */
    private void enqueue(Batch batch, PassLayout layout, CudaKvCache kv, boolean verify, CudaSampling.Step step, int copyInts) {
        int n = batch.size(), h = c.hiddenSize(), qDim = c.qDim(), kvDim = c.kvDim(), vocab = c.vocabularySize();
        int bs = kv.tables.blockSize();
        float eps = c.rmsNormEps();
        int neox = c.ropeLayout() == RopeLayout.HALVES ? 1 : 0;
        PassBuffers b = buffers;
        DeviceBuffer ints = b.ints().device();
        PassBuffers.AttentionPartials partials = b.partials();
        LayerWeights[] layers = weights.layers;
        driver.copyToDevice(ints.ints(0, copyInts), b.ints().host(), 0, stream);
        for (Chunk chunk : layout.chunks()) {
            int rows = chunk.rows();
            DeviceBuffer tokens = ints.ints(chunk.start(), rows);
            launch(Kernel.embedding(weights.embedding.type()), LaunchGeometry.embedding(weights.embedding.type(), h, rows),
                    weights.embedding.data(), tokens, b.x, h, vocab);
            for (int l = 0; l < layers.length; l++) {
                LayerWeights L = layers[l];
                // The attention block's norm; for layers after the first the previous down projection did it.
                if (l == 0) launch(Kernel.RMSNORM, LaunchGeometry.rmsnorm(rows), b.x, L.attnNorm(), b.xb, h, eps);
                projections.project(b.xb, rows, new Projection(L.wq(), L.bq(), b.q), new Projection(L.wk(), L.bk(), b.k), new Projection(L.wv(), L.bv(), b.v));
                // Every row's K/V goes in before any row attends: rows of one sequence see each other causally.
                for (Run run : chunk.runs()) {
                    launch(Kernel.ropeKvAppend(kv.type), LaunchGeometry.ropeKvAppend(run.rows()),
                            b.q.floats((long) run.row() * qDim, (long) run.rows() * qDim),
                            b.k.floats((long) run.row() * kvDim, (long) run.rows() * kvDim), b.v.floats((long) run.row() * kvDim, (long) run.rows() * kvDim),
                            kv.keys[l], kv.values[l], table(ints, run), ints.ints(n + chunk.start() + run.row(), run.rows()), weights.ropeFactors,
                            c.heads(), c.kvHeads(), c.headDim(), c.ropeDimensions(), c.ropeTheta(), neox, bs);
                }
                for (Run run : chunk.runs()) {
                    DeviceBuffer runPositions = ints.ints(n + chunk.start() + run.row(), run.rows());
                    launch(Kernel.attentionPartial(kv.type), LaunchGeometry.attentionPartial(run.maxChunks(), c.kvHeads(), c.headDim()),
                            b.q.floats((long) run.row() * qDim, (long) run.rows() * qDim), kv.keys[l], kv.values[l], table(ints, run), runPositions,
                            partials.out(), partials.max(), partials.sum(), run.rows(), c.heads(), c.kvHeads(), c.headDim(), bs, run.maxChunks(), attentionScale,
                            b.att.floats((long) run.row() * qDim, (long) run.rows() * qDim), b.attentionDone);
                }
                // x += attention output, then the FFN's norm; x += FFN output, then the next layer's (or the
                // output) norm: each in the projection's own launch.
                projections.projectIntoResidual(b.att, rows, new Projection(L.wo(), null, b.proj), new ResidualNorm(b.x, L.ffnNorm(), b.xb));
                projections.gatedProject(b.xb, rows, L.gate(), L.up(), b.hidden);
                DeviceBuffer nextNorm = l + 1 < layers.length ? layers[l + 1].attnNorm() : weights.outputNorm;
                projections.projectIntoResidual(b.hidden, rows, new Projection(L.down(), null, b.proj), new ResidualNorm(b.x, nextNorm, b.xb));
            }
            outputHead(batch.logitRows(), chunk);
        }
        int results = batch.logitRows().length;
        if (results > 0) {
            Results r = b.results();
            // With each id, the top token's probability (a greedy draft's p-min): no logits cross for either.
            launch(Kernel.ARGMAX, LaunchGeometry.argmax(results), r.logits(), r.ids().ints(1, results), r.tops().floats(0, results), vocab);
            driver.copyToHost(r.hostTops(), 0, r.tops().floats(0, results), stream);
            if (verify) {
                // Draft tokens d1..dk are the pass's own token ids of rows 1..k, already on the device.
                try (Nvtx.Range range = ranges.open(Nvtx.Phase.ACCEPT)) {
                    launch(Kernel.ACCEPT_GREEDY, LaunchGeometry.acceptGreedy(), ints.ints(1, Math.max(results - 1, 1)), r.ids(), results - 1);
                }
                driver.copyToHost(r.hostIds(), 0, r.ids().ints(0, results + 1), stream);
            } else {
                if (step != null) sampling.enqueueDecision(step, results, r.logits(), ints);
                driver.copyToHost(r.hostIds(), Integer.BYTES, r.ids().ints(1, results), stream);
            }
        }
    }

    /** Logits of the chunk's asked rows into the result logits' rows {@code [firstLogit, endLogit)}. */
    private void outputHead(int[] logitRows, Chunk chunk) {
        int count = chunk.endLogit() - chunk.firstLogit(), h = c.hiddenSize(), vocab = c.vocabularySize();
        if (count == 0) return;
        int firstRow = logitRows[chunk.firstLogit()] - chunk.start();
        boolean contiguous = logitRows[chunk.endLogit() - 1] - logitRows[chunk.firstLogit()] == count - 1;
        DeviceBuffer in;
        if (contiguous) {
            in = buffers.xb.floats((long) firstRow * h, (long) count * h);
        } else {
            for (int i = 0; i < count; i++) {
                int row = logitRows[chunk.firstLogit() + i] - chunk.start();
                driver.copyOnDevice(buffers.gathered.floats((long) i * h, h), buffers.xb.floats((long) row * h, h), stream);
            }
            in = buffers.gathered;
        }
        DeviceBuffer logits = buffers.results().logits().floats((long) chunk.firstLogit() * vocab, (long) count * vocab);
        projections.project(in, count, new Projection(weights.output, null, logits));
    }

    /** A run's block table: the staged ints from its offset on. */
    private static DeviceBuffer table(DeviceBuffer ints, Run run) {
        return ints.slice((long) run.tableOffset() * Integer.BYTES, ints.byteSize() - (long) run.tableOffset() * Integer.BYTES);
    }

    private void launch(Kernel kernel, LaunchDims dims, Object... args) { driver.launch(kernel, dims, stream, args); }

    /** Copies logit rows {@code [0, rows)} of pass {@code pass} to the host. */
    synchronized float[] fetchLogits(long pass, int rows) {
        if (pass != passes) {
            throw new IllegalStateException("the logits of pass " + pass + " were overwritten by pass " + passes
                    + "; copy what must outlive a pass before the next forward");
        }
        long bytes = (long) rows * c.vocabularySize() * Float.BYTES;
        return driver.call(() -> {
            PinnedBuffer host = buffers.hostLogits(bytes);
            driver.copyToHost(host, 0, buffers.results().logits().slice(0, bytes), stream);
            driver.synchronize(stream);
            float[] out = new float[rows * c.vocabularySize()];
            MemorySegment.copy(host.segment(), ValueLayout.JAVA_FLOAT, 0, out, 0, out.length);
            return out;
        });
    }

    /** Runs {@code change} once the last pass is done, before the next can start: for what passes read. */
    synchronized <T> T whenIdle(Supplier<T> change) {
        awaitPrevious();
        return change.get();
    }

    private void awaitPrevious() {
        try {
            previous.join();
        } catch (RuntimeException ignored) {
            // That pass's caller got its failure; the stream is drained either way.
        }
    }

    /** Turns CUDA graphs for passes of up to 17 rows on or off (default: on; system property {@code tandem.cudaGraphs}). */
    void useGraphs(boolean on) {
        whenIdle(() -> {
            graphs.enable(on);
            return null;
        });
    }

    /** Graphs captured and graph launches so far (tests: a replay really happened). */
    synchronized long[] graphCounts() { return graphs.counts(); }

    /** Chunks of at least this many rows multiply through the {@link Gemm} when there is one (default 64, {@code tandem.gemmRows}). */
    int gemmRows() { return prefillGemm.rows(); }

    /** Sets {@link #gemmRows()} (tests: a low threshold runs short prompts through the GEMM); chunks of 17 rows or fewer never use it. */
    void gemmRows(int rows) {
        whenIdle(() -> {
            graphs.drop();
            prefillGemm.rows(rows);
            return null;
        });
    }

    /** GEMM calls enqueued so far (tests: the GEMM path really ran). */
    synchronized long gemmCalls() { return prefillGemm.calls(); }

    @Override
    public synchronized void close() {
        if (closed) return;
        closed = true;
        awaitPrevious();
        if (graphs != null) graphs.close();
        if (sampling != null) sampling.close();
        for (AutoCloseable r : new AutoCloseable[] {prefillGemm, buffers, weights, passDone, stream}) closeQuietly(r);
    }

    static void closeQuietly(AutoCloseable r) {
        if (r == null) return;
        try {
            r.close();
        } catch (Exception ignored) {
            // freeing is best effort at close
        }
    }
}
