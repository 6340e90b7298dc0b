package dev.tandem.runtime.cuda;

import dev.tandem.runtime.Batch;
import dev.tandem.runtime.DeviceSampling;
import dev.tandem.runtime.KvCache;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A {@link CudaModel}'s sampling on the device: {@code sample_probs} turns logit rows into the sampler chain's
 * distributions and {@code accept_sampled_batch} runs the rejection test of each verified sequence against its
 * draft's distributions (a sampled verification, two ints back per sequence), or {@code accept_sampled} with no
 * draft tokens draws from one (a draft draw, whose distribution stays on the device as a kept row). Draws use
 * {@link CounterRandom}, keyed by (seed, position).
 *
 * <p>Layout of a verification pass with R result rows and S verified sequences: {@code probs} row r is the chain's
 * distribution of result row r (rows no verification names are left as they were); the staged meta holds 8 ints a
 * sequence (seed low, seed high, position of d1, k, first result row, first q row, batch row of d1, unused); the
 * draft distributions are either uploaded, each sequence's k rows after the previous one's from q row 0 of the
 * staging, or one draft model's kept rows, each sequence at its own {@code firstKeptRow}.
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
    record Step(List<Chain> chains, int sequences, int uploadedRows, CudaSampling keptBy, DeviceBuffer kept, boolean draw) {}

    /**
     * One {@code sample_probs} launch: result rows {@code [firstRow, firstRow + rows)} with one sampler chain (the
     * rows of adjacent verifications with equal chains share a launch).
     */
    record Chain(float invTemperature, int topK, float topP, float minP, int firstRow, int rows) {
        boolean sameChain(Chain o) { return invTemperature == o.invTemperature && topK == o.topK && topP == o.topP && minP == o.minP; }
    }

    /**
     * Sized for {@code rows} result rows: [meta: 8 ints a sequence, at most rows sequences][q: rows - 1 rows of the
     * vocabulary] staged in one pinned buffer and its device copy; {@code probs}: a distribution per result row (a
     * draw's q in row 0); {@code verdicts}: (accepted, next) per sequence, a draw's top probability after its pair.
     */
    private record Staging(int rows, PinnedBuffer host, DeviceBuffer device, DeviceBuffer probs, DeviceBuffer verdicts, PinnedBuffer hostVerdicts)
            implements AutoCloseable {
        long qOffset() { return (long) rows * META_BYTES; }

        @Override
        public void close() {
            for (AutoCloseable r : new AutoCloseable[] {host, device, probs, verdicts, hostVerdicts}) CudaModel.closeQuietly(r);
        }
    }

    /** Per sequence: seed low, seed high, position of d1, k, first result row, first q row, batch row of d1, unused. */
    private static final int META_INTS = 8, META_BYTES = META_INTS * Integer.BYTES;

    private final CudaModel model;
    private final GpuDriver driver;
    private final GpuStream stream;
    private final int vocab;
    private final Nvtx.Ranges ranges;
    private final GrowableBuffers<Staging> staging;
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
        this.staging = new GrowableBuffers<>(LaunchGeometry.MAX_ROWS, dropGraphs, rows -> allocateStaging(Math.toIntExact(rows), vocabBytes));
    }

    private Staging allocateStaging(int rows, long vocabBytes) {
        long staged = (long) rows * META_BYTES + (rows - 1) * vocabBytes, verdictBytes = (2L * rows + 1) * Integer.BYTES;
        List<AutoCloseable> made = new ArrayList<>(5);
        try {
            PinnedBuffer host = driver.allocatePinned(staged);
            made.add(host);
            DeviceBuffer device = driver.allocate(staged);
            made.add(device);
            DeviceBuffer probs = driver.allocate(rows * vocabBytes);
            made.add(probs);
            DeviceBuffer verdicts = driver.allocate(verdictBytes);
            made.add(verdicts);
            return new Staging(rows, host, device, probs, verdicts, driver.allocatePinned(verdictBytes));
        } catch (RuntimeException e) {
            made.forEach(CudaModel::closeQuietly);
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

    /** {@link #verifySampledAsync(Batch, KvCache, List)}, waited for (tests). */
    SampledVerdicts verifySampled(Batch batch, KvCache kv, List<Verification> verifications) {
        return CudaModel.joinPass(verifySampledAsync(batch, kv, verifications).toCompletableFuture());
    }

    /** Checks the request before anything is enqueued; the stage completes when the verdicts are on the host. */
    @Override
    public CompletionStage<SampledVerdicts> verifySampledAsync(Batch batch, KvCache kv, List<Verification> verifications) {
        if (verifications.isEmpty()) throw new IllegalArgumentException("a sampled verification pass needs at least one verification");
        int end = 0;
        CudaSampling keptBy = null;
        boolean uploaded = false;
        for (int i = 0; i < verifications.size(); i++) {
            Verification v = verifications.get(i);
            String which = verifications.size() == 1 ? "sampled verification" : "sampled verification " + i + " of " + verifications.size();
            int k = v.k();
            if (k < 1) throw new IllegalArgumentException(which + " needs at least one draft token (rows [last, d1 .. dk]), got k = " + k);
            if (v.firstRow() < end) {
                throw new IllegalArgumentException(which + " starts at result row " + v.firstRow() + ", inside the rows before it (up to " + end + ")");
            }
            end = v.firstRow() + k + 1;
            requireRows(batch, v, which);
            SampledDraft draft = v.draft();
            checkTemperature(draft.temperature(), which);
            if (draft.q() != null) {
                if (draft.q().length < k * vocab) {
                    throw new IllegalArgumentException(which + " of " + k + " draft tokens needs " + k + " draft distributions of "
                            + vocab + " ids (" + (long) k * vocab + " floats), got " + draft.q().length + " floats");
                }
                uploaded = true;
            } else {
                if (!(draft.keptBy() instanceof CudaSampling owner) || owner.driver != driver) {
                    throw new IllegalArgumentException(which + " reads kept draft rows only from a model on the same device, got " + draft.keptBy());
                }
                if (owner.vocab != vocab) {
                    throw new IllegalArgumentException(which + ": kept draft rows have " + owner.vocab + " ids, this model's vocabulary " + vocab);
                }
                if (owner.keptRowCount == 0) throw new IllegalArgumentException(which + ": the draft model keeps no rows (keepDraftRows makes them)");
                if (draft.firstKeptRow() < 0 || draft.firstKeptRow() + k > owner.keptRowCount) {
                    throw new IllegalArgumentException(which + ": kept draft rows [" + draft.firstKeptRow() + ", " + (draft.firstKeptRow() + k)
                            + ") are outside [0, " + owner.keptRowCount + ")");
                }
                if (keptBy != null && keptBy != owner) {
                    throw new IllegalArgumentException(which + " reads kept rows of " + owner + ", an earlier one those of " + keptBy + ": one pass reads one model's");
                }
                keptBy = owner;
            }
            if (uploaded && keptBy != null) {
                throw new IllegalArgumentException(which + ": a pass reads either uploaded draft distributions or kept rows, not both");
            }
        }
        return model.pass(batch, kv, false, verifications, null).thenApply(r -> {
            int[] v = r.sampledVerdicts();
            List<SampledVerdict> verdicts = new ArrayList<>(verifications.size());
            for (int i = 0; i < verifications.size(); i++) verdicts.add(new SampledVerdict(v[2 * i], v[2 * i + 1]));
            return new SampledVerdicts(verdicts, r);
        });
    }

    /**
     * A verification's result rows are one sequence's consecutive batch rows {@code [last, d1 .. dk]}, at consecutive
     * positions, each with its logits.
     */
    private static void requireRows(Batch batch, Verification v, String which) {
        int[] logitRows = batch.logitRows();
        int first = v.firstRow(), k = v.k();
        if (first < 0 || first + k >= logitRows.length) {
            throw new IllegalArgumentException(which + " needs logits for every row [last, d1 .. dk]: result rows [" + first + ", " + (first + k)
                    + "], got logit rows " + Arrays.toString(logitRows));
        }
        int row0 = logitRows[first];
        for (int j = 1; j <= k; j++) {
            int row = logitRows[first + j];
            if (row != row0 + j) {
                throw new IllegalArgumentException(which + " needs logits for every row [last, d1 .. dk] (consecutive batch rows from " + row0
                        + "), got logit rows " + Arrays.toString(logitRows));
            }
            if (batch.sequences()[row] != batch.sequences()[row0] || batch.positions()[row] != batch.positions()[row0] + j) {
                throw new IllegalArgumentException(which + " runs one sequence at consecutive positions; batch row " + row + " is sequence "
                        + batch.sequences()[row] + " at " + batch.positions()[row] + ", row " + row0 + " sequence " + batch.sequences()[row0]
                        + " at " + batch.positions()[row0]);
            }
        }
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
     * Writes a sampled verification's per-sequence meta and uploaded draft distributions, or a draw's seed and
     * position, into the staging buffer, growing it as needed. Only while the stream is idle.
     */
    Step stage(List<Verification> verifications, DraftDraw draw, Batch batch) {
        int results = batch.logitRows().length;
        Staging s = staging.atLeast(results);
        MemorySegment h = s.host().segment();
        if (draw != null) {
            // A draft draw's draws sit at the drafted token's position, after its logit row.
            long seed = CounterRandom.draftSeed(draw.seed());
            writeMeta(h, 0, seed, batch.positions()[batch.logitRows()[0]] + 1, 0, 0, 0, 0);
            return new Step(List.of(new Chain(1f / draw.temperature(), draw.topK(), draw.topP(), draw.minP(), 0, 1)), 1, 0, null, null, true);
        }
        List<Chain> chains = new ArrayList<>(verifications.size());
        CudaSampling owner = null;
        int uploadedRows = 0;
        for (int i = 0; i < verifications.size(); i++) {
            Verification v = verifications.get(i);
            SampledDraft d = v.draft();
            int k = v.k(), row0 = batch.logitRows()[v.firstRow()];
            int qRow;
            if (d.q() != null) {
                qRow = uploadedRows;
                MemorySegment.copy(d.q(), 0, h, ValueLayout.JAVA_FLOAT, s.qOffset() + (long) qRow * vocab * Float.BYTES, k * vocab);
                uploadedRows += k;
            } else {
                owner = (CudaSampling) d.keptBy();
                qRow = d.firstKeptRow();
            }
            // A verification's draws sit at d1's position.
            writeMeta(h, i, d.seed(), batch.positions()[row0 + 1], k, v.firstRow(), qRow, row0 + 1);
            Chain c = new Chain(1f / d.temperature(), d.topK(), d.topP(), d.minP(), v.firstRow(), k + 1);
            Chain last = chains.isEmpty() ? null : chains.getLast();
            if (last != null && last.sameChain(c) && last.firstRow() + last.rows() == c.firstRow()) {
                chains.set(chains.size() - 1, new Chain(c.invTemperature(), c.topK(), c.topP(), c.minP(), last.firstRow(), last.rows() + c.rows()));
            } else {
                chains.add(c);
            }
        }
        return new Step(List.copyOf(chains), verifications.size(), uploadedRows, owner, owner == null ? null : owner.keptRows, false);
    }

    private static void writeMeta(MemorySegment h, int sequence, long seed, int position, int k, int firstRow, int qRow, int draftRow) {
        long at = (long) sequence * META_BYTES;
        h.set(ValueLayout.JAVA_INT, at, (int) seed);
        h.set(ValueLayout.JAVA_INT, at + 4, (int) (seed >>> 32));
        h.set(ValueLayout.JAVA_INT, at + 8, position);
        h.set(ValueLayout.JAVA_INT, at + 12, k);
        h.set(ValueLayout.JAVA_INT, at + 16, firstRow);
        h.set(ValueLayout.JAVA_INT, at + 20, qRow);
        h.set(ValueLayout.JAVA_INT, at + 24, draftRow);
        h.set(ValueLayout.JAVA_INT, at + 28, 0);
    }

    /** Before the pass, outside any graph: kept rows are written on the draft model's stream, so wait there for its latest pass. */
    void awaitKeptRows(Step step) {
        if (step.keptBy() != null) driver.wait(stream, step.keptBy().model.passEvent());
    }

    /**
     * The pass's sampling kernels after its logits ({@code results} rows in {@code logits}; the staged token ids in
     * {@code stagedInts}), then the verdicts' copy to the host.
     */
    void enqueueDecision(Step step, int results, DeviceBuffer logits, DeviceBuffer stagedInts) {
        Staging s = staging.current();
        if (step.draw()) {
            // q = the chain's distribution of the one logit row; accept_sampled with no draft tokens draws from it
            // (verdict = (0, token)). The pass then copies q to its kept row.
            Chain c = step.chains().getFirst();
            DeviceBuffer q = s.probs().floats(0, vocab);
            driver.copyToDevice(s.device().slice(0, META_BYTES), s.host(), 0, stream);
            launch(Kernel.SAMPLE_PROBS, LaunchGeometry.sampleProbs(1), logits, q, vocab, c.invTemperature(), c.topK(), c.topP(), c.minP(),
                    s.verdicts().floats(2, 1));
            launch(Kernel.ACCEPT_SAMPLED, LaunchGeometry.acceptSampled(1), q, q, stagedInts.ints(0, 1), s.device().ints(0, 3), s.verdicts(), 0, vocab);
            driver.copyToHost(s.hostVerdicts(), 0, s.verdicts().ints(0, 3), stream);
            return;
        }
        int sequences = step.sequences();
        long uploadedBytes = (long) step.uploadedRows() * vocab * Float.BYTES;
        DeviceBuffer q = step.keptBy() != null ? step.kept() : s.device().slice(s.qOffset(), (long) (s.rows() - 1) * vocab * Float.BYTES);
        try (Nvtx.Range range = ranges.open(Nvtx.Phase.ACCEPT)) {
            driver.copyToDevice(s.device().slice(0, (long) sequences * META_BYTES), s.host(), 0, stream);
            if (uploadedBytes > 0) driver.copyToDevice(s.device().slice(s.qOffset(), uploadedBytes), s.host(), s.qOffset(), stream);
            for (Chain c : step.chains()) {
                long at = (long) c.firstRow() * vocab, n = (long) c.rows() * vocab;
                launch(Kernel.SAMPLE_PROBS, LaunchGeometry.sampleProbs(c.rows()), logits.floats(at, n), s.probs().floats(at, n), vocab,
                        c.invTemperature(), c.topK(), c.topP(), c.minP(), null);
            }
            // Draft tokens d1..dk are the pass's own token ids, already on the device: meta says from which batch row.
            launch(Kernel.ACCEPT_SAMPLED_BATCH, LaunchGeometry.acceptSampled(sequences), s.probs(), q, stagedInts,
                    s.device().ints(0, sequences * META_INTS), s.verdicts(), vocab);
        }
        driver.copyToHost(s.hostVerdicts(), 0, s.verdicts().ints(0, 2 * sequences), stream);
    }

    /** After a draw's pass, outside its graph: its q into kept row {@code draw.row()}. */
    void keep(DraftDraw draw) {
        driver.copyOnDevice(keptRows.floats((long) draw.row() * vocab, vocab), staging.current().probs().floats(0, vocab), stream);
    }

    /** The (accepted, next) pairs of the last sampled pass's {@code sequences} verifications (read once it is done). */
    int[] verdicts(int sequences) {
        int[] out = new int[2 * sequences];
        MemorySegment.copy(staging.current().hostVerdicts().segment(), ValueLayout.JAVA_INT, 0, out, 0, out.length);
        return out;
    }

    /** The last draft draw's top-token probability (read once it is done). */
    float drawnTopProbability() {
        return staging.current().hostVerdicts().segment().get(ValueLayout.JAVA_FLOAT, 2 * Integer.BYTES);
    }

    private void launch(Kernel kernel, LaunchDims dims, Object... args) { driver.launch(kernel, dims, stream, args); }

    @Override
    public String toString() { return "device sampling of model '" + ranges.model() + "'"; }

    void close() {
        for (AutoCloseable r : new AutoCloseable[] {staging, keptRows}) CudaModel.closeQuietly(r);
        keptRows = null;
        keptRowCount = 0;
    }
}
