package dev.tandem.runtime.cuda;

import dev.tandem.runtime.Batch;
import dev.tandem.runtime.DeviceSampling;
import dev.tandem.runtime.KvCache;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A {@link CudaModel}'s sampling on the device: {@code sample_probs} turns logit rows into the sampler chain's
 * distributions and {@code accept_sampled} runs the rejection test against the draft's distributions (a sampled
 * verification, two ints back) or, with no draft tokens, draws from one (a draft draw, whose distribution stays on
 * the device as a kept row). Draws use {@link CounterRandom}, keyed by (seed, position).
 */
final class CudaSampling implements DeviceSampling {
    /**
     * A sampled verification or draft draw as the pass's kernels take it (part of the pass's graph key): the sampler
     * chain, and where a verification reads the draft's q rows, from the staged upload ({@code keptBy} null) or from
     * {@code keptBy}'s kept rows {@code kept}, row {@code firstKeptRow} on ({@code kept} is here because a graph holds
     * its address: rows kept anew take a new graph). A draft draw ({@code draw}) makes q in row 0 of the distributions
     * and draws from it. The kept row a draw fills is not part of it: the copy there runs after the pass, outside any
     * graph, so one graph serves every row.
     */
    record Step(float invTemperature, int topK, float topP, float minP, CudaSampling keptBy, DeviceBuffer kept, int firstKeptRow, boolean draw) {}

    /** What a sampled pass brings back besides the ids: the accepted length, the next token, a draw's top probability. */
    record Verdict(int accepted, int next, float topProbability) {}

    /**
     * [seed low, seed high, position of d1, unused][q: k rows of the vocabulary], staged in one pinned buffer and
     * copied in one go; {@code probs}: the main model's k+1 distributions (a draw's q in row 0).
     */
    private record Staging(PinnedBuffer host, DeviceBuffer device, DeviceBuffer probs) implements AutoCloseable {
        @Override
        public void close() {
            host.close();
            device.close();
            probs.close();
        }
    }

    private static final int META_BYTES = 4 * Integer.BYTES;

    private final CudaModel model;
    private final GpuDriver driver;
    private final GpuStream stream;
    private final int vocab;
    private final Nvtx.Ranges ranges;
    private final GrowableBuffers<Staging> staging;
    /** accept_sampled's verdict (accepted, next) and a draw's top-token probability, on the device and back. */
    private final DeviceBuffer verdict;
    private final PinnedBuffer hostVerdict;
    /** Rows of the vocabulary that draws fill and verifications on the same device read; volatile: other models read them. */
    private volatile DeviceBuffer keptRows;
    private volatile int keptRowCount;
    private final AtomicLong draws = new AtomicLong();

    /** Sampling on {@code model}'s stream; {@code dropGraphs} runs before a buffer its graphs captured is replaced. */
    CudaSampling(CudaModel model, GpuDriver driver, GpuStream stream, Nvtx.Ranges ranges, Runnable dropGraphs) {
        this.model = model;
        this.driver = driver;
        this.stream = stream;
        this.vocab = model.config().vocabularySize();
        this.ranges = ranges;
        long vocabBytes = (long) vocab * Float.BYTES;
        this.staging = new GrowableBuffers<>(LaunchGeometry.MAX_ROWS - 1, dropGraphs, rows -> new Staging(
                driver.allocatePinned(META_BYTES + rows * vocabBytes), driver.allocate(META_BYTES + rows * vocabBytes),
                driver.allocate((rows + 1) * vocabBytes)));
        this.verdict = driver.allocate(3 * Integer.BYTES);
        try {
            this.hostVerdict = driver.allocatePinned(3 * Integer.BYTES);
        } catch (RuntimeException e) {
            verdict.close();
            throw e;
        }
    }

    /** Replaces the kept rows by {@code rows} new ones when that is more; waits for this model's last pass first. */
    @Override
    public void keepDraftRows(int rows) {
        if (rows < 1) throw new IllegalArgumentException("kept draft rows: at least 1, got " + rows);
        model.whenIdle(() -> {
            if (rows <= keptRowCount) return null;
            long bytes = (long) rows * vocab * Float.BYTES;
            new DeviceMemoryPlan(0, 0, 0, bytes).requireFree(driver.facts(), rows + " kept draft rows of model '" + ranges.model() + "'");
            DeviceBuffer replaced = keptRows;
            keptRows = driver.allocate(bytes);
            keptRowCount = rows;
            if (replaced != null) replaced.close();
            return null;
        });
    }

    /** Rows {@link #keepDraftRows} made so far. */
    int keptRowCount() { return keptRowCount; }

    /** {@link #verifySampledAsync}, waited for (tests). */
    SampledVerdict verifySampled(Batch batch, KvCache kv, SampledDraft draft) {
        return CudaModel.joinPass(verifySampledAsync(batch, kv, draft).toCompletableFuture());
    }

    /** Checks the request before anything is enqueued; the stage completes when the verdict is on the host. */
    @Override
    public CompletionStage<SampledVerdict> verifySampledAsync(Batch batch, KvCache kv, SampledDraft draft) {
        PassLayout.requireVerification(batch, "sampled");
        int k = batch.size() - 1;
        if (k < 1) throw new IllegalArgumentException("sampled verification needs at least one draft token (rows [last, d1 .. dk]), got " + batch.size() + " row");
        if (draft.q() != null && draft.q().length < k * vocab) {
            throw new IllegalArgumentException("sampled verification of " + k + " draft tokens needs " + k + " draft distributions of "
                    + vocab + " ids (" + (long) k * vocab + " floats), got " + draft.q().length + " floats");
        }
        if (draft.q() == null) {
            if (!(draft.keptBy() instanceof CudaSampling owner) || owner.driver != driver) {
                throw new IllegalArgumentException("sampled verification reads kept draft rows only from a model on the same device, got " + draft.keptBy());
            }
            if (owner.vocab != vocab) {
                throw new IllegalArgumentException("kept draft rows have " + owner.vocab + " ids, this model's vocabulary " + vocab);
            }
            if (owner.keptRowCount == 0) throw new IllegalArgumentException("the draft model keeps no rows (keepDraftRows makes them)");
            if (draft.firstKeptRow() < 0 || draft.firstKeptRow() + k > owner.keptRowCount) {
                throw new IllegalArgumentException("kept draft rows [" + draft.firstKeptRow() + ", " + (draft.firstKeptRow() + k)
                        + ") are outside [0, " + owner.keptRowCount + ")");
            }
        }
        checkTemperature(draft.temperature(), "sampled verification");
        return model.pass(batch, kv, false, draft, null).thenApply(r -> new SampledVerdict(r.accepted(), r.next()));
    }

    /** Checks the request before anything is enqueued; {@code accept_sampled} draws at the drafted token's position with {@link CounterRandom#draftSeed}. */
    @Override
    public CompletionStage<DrawnToken> sampleDraftAsync(Batch batch, KvCache kv, DraftDraw draw) {
        if (batch.logitRows().length != 1) {
            throw new IllegalArgumentException("a draft draw needs logits for exactly one row, got rows " + Arrays.toString(batch.logitRows()));
        }
        int rows = keptRowCount;
        if (draw.row() < 0 || draw.row() >= rows) {
            throw new IllegalArgumentException("kept draft row " + draw.row() + " is outside [0, " + rows + ")" + (rows == 0 ? " (keepDraftRows makes them)" : ""));
        }
        checkTemperature(draw.temperature(), "a draft draw");
        CompletionStage<DrawnToken> drawn = model.pass(batch, kv, false, null, draw).thenApply(r -> new DrawnToken(r.next(), r.drawnTopProbability()));
        draws.incrementAndGet();
        return drawn;
    }

    /** Draft draws enqueued so far (tests: the device path really ran). */
    long draws() { return draws.get(); }

    /** Kept row {@code row} as the last draw left it (tests). */
    float[] keptRow(int row) {
        return model.whenIdle(() -> driver.call(() -> {
            try (PinnedBuffer host = driver.allocatePinned((long) vocab * Float.BYTES)) {
                driver.copyToHost(host, 0, keptRows.floats((long) row * vocab, vocab), stream);
                driver.synchronize(stream);
                float[] out = new float[vocab];
                MemorySegment.copy(host.segment(), ValueLayout.JAVA_FLOAT, 0, out, 0, vocab);
                return out;
            }
        }));
    }

    private static void checkTemperature(float t, String what) {
        if (!(t > 0) || Float.isInfinite(t)) throw new IllegalArgumentException(what + " needs a positive temperature, got " + t);
    }

    /**
     * Writes a sampled verification's or draw's seed and position (and uploaded draft distributions) into the staging
     * buffer, growing it as needed. Only while the stream is idle.
     */
    Step stage(SampledDraft draft, DraftDraw draw, Batch batch) {
        int k = draft != null ? batch.size() - 1 : 0;
        boolean upload = draft != null && draft.q() != null;
        Staging s = staging.atLeast(k);
        // A verification's draws sit at d1's position; a draft draw's at the drafted token's, after its logit row.
        long seed = draft != null ? draft.seed() : CounterRandom.draftSeed(draw.seed());
        int position = draft != null ? batch.positions()[1] : batch.positions()[batch.logitRows()[0]] + 1;
        MemorySegment h = s.host().segment();
        h.set(ValueLayout.JAVA_INT, 0, (int) seed);
        h.set(ValueLayout.JAVA_INT, Integer.BYTES, (int) (seed >>> 32));
        h.set(ValueLayout.JAVA_INT, 2 * Integer.BYTES, position);
        if (upload) MemorySegment.copy(draft.q(), 0, h, ValueLayout.JAVA_FLOAT, META_BYTES, k * vocab);
        if (draw != null) return new Step(1f / draw.temperature(), draw.topK(), draw.topP(), draw.minP(), null, null, 0, true);
        CudaSampling owner = upload ? null : (CudaSampling) draft.keptBy();
        return new Step(1f / draft.temperature(), draft.topK(), draft.topP(), draft.minP(), owner, owner == null ? null : owner.keptRows,
                draft.firstKeptRow(), false);
    }

    /** Before the pass, outside any graph: kept rows are written on the draft model's stream, so wait there for its latest pass. */
    void awaitKeptRows(Step step) {
        if (step.keptBy() != null) driver.wait(stream, step.keptBy().model.passEvent());
    }

    /**
     * The pass's sampling kernels after its logits ({@code results} rows in {@code logits}; the staged token ids in
     * {@code stagedInts}), then the verdict's copy to the host.
     */
    void enqueueDecision(Step step, int results, DeviceBuffer logits, DeviceBuffer stagedInts) {
        Staging s = staging.current();
        if (step.draw()) {
            // q = the chain's distribution of the one logit row; accept_sampled with no draft tokens draws from it
            // (verdict = (0, token)). The pass then copies q to its kept row.
            DeviceBuffer q = s.probs().floats(0, vocab);
            driver.copyToDevice(s.device().slice(0, META_BYTES), s.host(), 0, stream);
            launch(Kernel.SAMPLE_PROBS, LaunchGeometry.sampleProbs(1), logits, q, vocab,
                    step.invTemperature(), step.topK(), step.topP(), step.minP(), verdict.floats(2, 1));
            launch(Kernel.ACCEPT_SAMPLED, LaunchGeometry.acceptSampled(1), q, q, stagedInts.ints(0, 1), s.device().ints(0, 3), verdict, 0, vocab);
        } else {
            int k = results - 1;
            long qBytes = (long) k * vocab * Float.BYTES;
            boolean kept = step.keptBy() != null;
            DeviceBuffer q = kept ? step.kept().floats((long) step.firstKeptRow() * vocab, (long) k * vocab) : s.device().slice(META_BYTES, qBytes);
            try (Nvtx.Range range = ranges.open(Nvtx.Phase.ACCEPT)) {
                driver.copyToDevice(s.device().slice(0, META_BYTES + (kept ? 0 : qBytes)), s.host(), 0, stream);
                launch(Kernel.SAMPLE_PROBS, LaunchGeometry.sampleProbs(results), logits, s.probs(), vocab,
                        step.invTemperature(), step.topK(), step.topP(), step.minP(), null);
                // Draft tokens d1..dk are the pass's own token ids of rows 1..k, already on the device.
                launch(Kernel.ACCEPT_SAMPLED, LaunchGeometry.acceptSampled(1), s.probs(), q,
                        stagedInts.ints(1, k), s.device().ints(0, 3), verdict, k, vocab);
            }
        }
        driver.copyToHost(hostVerdict, 0, verdict, stream);
    }

    /** After a draw's pass, outside its graph: its q into kept row {@code draw.row()}. */
    void keep(DraftDraw draw) {
        driver.copyOnDevice(keptRows.floats((long) draw.row() * vocab, vocab), staging.current().probs().floats(0, vocab), stream);
    }

    /** The verdict the last sampled pass brought back (read once it is done). */
    Verdict verdict() {
        MemorySegment v = hostVerdict.segment();
        return new Verdict(v.get(ValueLayout.JAVA_INT, 0), v.get(ValueLayout.JAVA_INT, Integer.BYTES), v.get(ValueLayout.JAVA_FLOAT, 2 * Integer.BYTES));
    }

    private void launch(Kernel kernel, LaunchDims dims, Object... args) { driver.launch(kernel, dims, stream, args); }

    @Override
    public String toString() { return "device sampling of model '" + ranges.model() + "'"; }

    void close() {
        for (AutoCloseable r : new AutoCloseable[] {staging, keptRows, verdict, hostVerdict}) CudaModel.closeQuietly(r);
        keptRows = null;
        keptRowCount = 0;
    }
}
