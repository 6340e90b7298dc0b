package dev.tandem.runtime.cuda;

import dev.tandem.decode.Distribution;
import dev.tandem.decode.Sampler;
import dev.tandem.decode.SamplerSettings;
import dev.tandem.model.ModelFile;
import dev.tandem.runtime.Batch;
import dev.tandem.runtime.DeviceSampling.DraftDraw;
import dev.tandem.runtime.DeviceSampling.DrawnToken;
import dev.tandem.runtime.DeviceSampling.SampledDraft;
import dev.tandem.runtime.DeviceSampling.SampledVerdict;
import dev.tandem.runtime.DeviceSampling.Verification;
import dev.tandem.runtime.ForwardResult;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.LoadOptions;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.runtime.PagedKvCache;
import dev.tandem.runtime.cpu.CpuBackend;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Draft draws on the device ({@link CudaSampling#sampleDraftAsync}), through the host emulation: the kept row is the
 * sampler chain of the pass's logits, the token is the draw {@code accept_sampled} makes from that row at the
 * drafted token's position with the draft seed, and a main model on the same device verifies against the kept
 * rows exactly as against the same rows uploaded from the host. Forged tiny models (vocabulary 260).
 */
class CudaDraftDrawTest {
    static final int[] PROMPT = {1, 70, 71};
    static final SamplerSettings CHAIN = new SamplerSettings(1.5f, 0, 1f, 0.02f, 1f, 0, 0);
    /** The rows this test's draft keeps: draft-ahead's layout for drafts of 16 (two drafts and the ahead guess). */
    static final int KEPT_ROWS = 34;

    static ForgedPair pair;
    static CudaBackend cuda, other;
    static ModelFile mainFile, draftFile;
    static CudaModel main, draft, elsewhere;
    static CudaSampling drafting;
    static int vocab;

    @BeforeAll
    static void open() {
        assumeTrue(HostKernels.isAvailable(), () -> "host-emulation kernels not built: " + HostKernels.unavailableReason());
        pair = ForgedPair.forge(11);
        mainFile = pair.main;
        draftFile = pair.draft;
        cuda = CudaBackend.onHost();
        other = CudaBackend.onHost();
        main = (CudaModel) cuda.load(mainFile, LoadOptions.defaults());
        draft = (CudaModel) cuda.load(draftFile, LoadOptions.defaults());
        elsewhere = (CudaModel) other.load(draftFile, LoadOptions.defaults());
        drafting = draft.sampling();
        drafting.keepDraftRows(KEPT_ROWS);
        vocab = main.config().vocabularySize();
    }

    @AfterAll
    static void close() {
        ForgedPair.closeAll(elsewhere, draft, main, other, cuda, pair);
    }

    static DraftDraw draw(int row, long seed) {
        return new DraftDraw(row, CHAIN.temperature(), CHAIN.topK(), CHAIN.topP(), CHAIN.minP(), seed);
    }

    @Test
    void theKeptRowIsTheSamplerChainAndTheTokenItsCounterDraw() {
        for (long seed = 1; seed <= 6; seed++) {
            PagedKvCache tables = new PagedKvCache(16, 4);
            try (KvCache kv = draft.createKvCache(tables)) {
                int seq = tables.createSequence();
                tables.reserve(seq, PROMPT.length + 1);
                int row = (int) seed % KEPT_ROWS;
                DrawnToken drawn = drafting.sampleDraftAsync(Batch.of(seq, 0, PROMPT, false), kv, draw(row, seed)).toCompletableFuture().join();
                int token = drawn.token();
                float[] kept = drafting.keptRow(row);
                float[] logits = new float[vocab];
                draft.forward(Batch.of(seq, PROMPT.length - 1, new int[] {PROMPT[PROMPT.length - 1]}, false), kv).copyLogits(0, logits);

                Distribution q = new Distribution(vocab);
                new Sampler(CHAIN, vocab).fill(logits, vocab, PROMPT, PROMPT.length, q);
                for (int t = 0; t < vocab; t++) {
                    assertEquals(q.p(t), kept[t], 1e-5f * Math.max(q.p(t), 1e-3f), "seed " + seed + ", token " + t);
                }
                // The draw: accept_sampled with no draft tokens, from the kept row, at the drafted token's position.
                assertEquals(drawByHand(kept, CounterRandom.draftSeed(seed), PROMPT.length), token, "seed " + seed);
                assertTrue(kept[token] > 0, "drew token " + token + " of probability 0");
                assertEquals(q.p(q.top()), drawn.topProbability(), 1e-5f * q.p(q.top()), "seed " + seed + ": q's top probability");
            }
        }
    }

    /** Every pass brings back, with each row's argmax, its top-token probability (greedy p-min), as the CPU computes it. */
    @Test
    void theTopProbabilityComesWithTheArgmax() {
        PagedKvCache tables = new PagedKvCache(16, 4);
        try (KvCache kv = draft.createKvCache(tables)) {
            int seq = tables.createSequence();
            tables.reserve(seq, PROMPT.length);
            ForwardResult r = draft.forward(new Batch(PROMPT, new int[] {0, 1, 2}, new int[] {seq, seq, seq}, new int[] {0, 1, 2}), kv);
            float[] logits = new float[vocab];
            for (int row = 0; row < 3; row++) {
                r.copyLogits(row, logits);
                float cpu = ForwardResult.topProbability(logits, 0, vocab);
                assertEquals(cpu, r.topProbability(row), 1e-5f * cpu, "row " + row);
            }
        }
    }

    /** The kept row is filled after the pass, outside its graph: draws into ten rows replay one captured graph. */
    @Test
    void drawsIntoDifferentRowsReplayOneGraph() {
        assumeTrue(System.getProperty("tandem.cudaGraphs") == null, "tandem.cudaGraphs is set for this run");
        PagedKvCache tables = new PagedKvCache(16, 4);
        try (KvCache kv = draft.createKvCache(tables)) {
            int seq = tables.createSequence();
            tables.reserve(seq, PROMPT.length + 11);
            int token = drafting.sampleDraftAsync(Batch.of(seq, 0, PROMPT, false), kv, draw(0, 5)).toCompletableFuture().join().token();
            long[] before = draft.graphCounts();
            for (int row = 1; row <= 10; row++) {
                int position = PROMPT.length + row - 1;
                token = drafting.sampleDraftAsync(Batch.of(seq, position, new int[] {token}, false), kv, draw(row, 5)).toCompletableFuture().join().token();
            }
            long[] after = draft.graphCounts();
            assertTrue(after[0] - before[0] <= 1 && after[1] - before[1] == 10,
                    (after[0] - before[0]) + " captures for " + (after[1] - before[1]) + " graph launches");
        }
    }

    @Test
    void aSeedGivesOneDrawAndSeedsDiffer() {
        Set<Integer> tokens = new HashSet<>();
        for (long seed = 0; seed < 12; seed++) {
            int a = drawAfterPrompt(seed), b = drawAfterPrompt(seed);
            assertEquals(a, b, "seed " + seed);
            tokens.add(a);
        }
        assertTrue(tokens.size() > 1, "twelve seeds drew one token: " + tokens);
    }

    /**
     * Drafting d1..d3 on the device and verifying against the kept rows gives the verdict of verifying the same
     * tokens against the same rows uploaded from the host: the rows are read in place, at the right offset.
     */
    @Test
    void verifyingAgainstKeptRowsEqualsVerifyingAgainstUploadedOnes() {
        int k = 3;
        for (long seed = 0; seed < 8; seed++) {
            int first = (int) (seed * 5 % (KEPT_ROWS - k));
            SampledVerdict[] keptAndUploaded = verifyKeptAndUploaded(draft, first, k, seed);
            assertEquals(keptAndUploaded[1], keptAndUploaded[0], "seed " + seed);
        }
    }

    /**
     * The caller sizes the kept rows: none until it asks, asking for fewer keeps what is there, and asking for more
     * replaces them, after which verifications read the new rows (no graph captured over the old ones replays).
     */
    @Test
    void theCallerSizesTheKeptRows() {
        try (CudaModel sized = (CudaModel) cuda.load(draftFile, LoadOptions.defaults())) {
            CudaSampling rows = sized.sampling();
            PagedKvCache tables = new PagedKvCache(16, 4);
            try (KvCache draftKv = sized.createKvCache(tables); KvCache mainKv = main.createKvCache(tables)) {
                int seq = tables.createSequence();
                tables.reserve(seq, PROMPT.length + 1);
                var e = assertThrows(IllegalArgumentException.class, () -> rows.sampleDraftAsync(Batch.of(seq, 0, PROMPT, false), draftKv, draw(0, 1)));
                assertTrue(e.getMessage().contains("outside [0, 0)"), e.getMessage());
                tables.release(seq);

                rows.keepDraftRows(2);
                SampledVerdict[] before = verifyKeptAndUploaded(rows, tables, draftKv, mainKv, 0, 2, 3);
                assertEquals(before[1], before[0]);
                rows.keepDraftRows(1);
                assertEquals(2, rows.keptRowCount());
                rows.keepDraftRows(5);
                assertEquals(5, rows.keptRowCount());
                for (long seed = 4; seed < 8; seed++) {
                    SampledVerdict[] after = verifyKeptAndUploaded(rows, tables, draftKv, mainKv, 0, 2, seed);
                    assertEquals(after[1], after[0], "seed " + seed);
                }
                SampledVerdict[] past = verifyKeptAndUploaded(rows, tables, draftKv, mainKv, 2, 3, 8);
                assertEquals(past[1], past[0], "rows [2, 5)");
            }
        }
    }

    /**
     * A batched verification of two sequences whose drafts the draft model kept in rows of their own ([0, 2) and
     * [5, 8)): the verdicts equal those against the same rows uploaded, and each sequence's lone verification.
     */
    @Test
    void aBatchReadsEachSequencesKeptRows() {
        int[] ks = {2, 3}, firstKept = {0, 5};
        PagedKvCache tables = new PagedKvCache(16, 8);
        try (KvCache draftKv = draft.createKvCache(tables); KvCache mainKv = main.createKvCache(tables)) {
            int n = PROMPT.length, rows = 0;
            for (int k : ks) rows += k + 1;
            int[] tokens = new int[rows], positions = new int[rows], sequences = new int[rows], all = new int[rows];
            List<Verification> kept = new ArrayList<>(), uploaded = new ArrayList<>();
            Batch[] alone = new Batch[ks.length];
            for (int j = 0, row = 0; j < ks.length; j++) {
                int k = ks[j], seq = tables.createSequence();
                tables.reserve(seq, n + k);
                int[] context = Arrays.copyOf(PROMPT, n + k);
                context[n] = drafting.sampleDraftAsync(Batch.of(seq, 0, PROMPT, false), draftKv, draw(firstKept[j], 20 + j)).toCompletableFuture().join().token();
                for (int i = 1; i < k; i++) {
                    context[n + i] = drafting.sampleDraftAsync(Batch.of(seq, n + i - 1, new int[] {context[n + i - 1]}, false), draftKv,
                            draw(firstKept[j] + i, 20 + j)).toCompletableFuture().join().token();
                }
                float[] q = new float[k * vocab];
                for (int i = 0; i < k; i++) System.arraycopy(drafting.keptRow(firstKept[j] + i), 0, q, i * vocab, vocab);
                main.forward(Batch.of(seq, 0, Arrays.copyOf(PROMPT, n - 1), false), mainKv);
                alone[j] = Batch.of(seq, n - 1, Arrays.copyOfRange(context, n - 1, n + k), true);
                long verifySeed = 40 + j;
                kept.add(new Verification(row, k, SampledDraft.kept(drafting, firstKept[j], CHAIN.temperature(), CHAIN.topK(), CHAIN.topP(), CHAIN.minP(), verifySeed)));
                uploaded.add(new Verification(row, k, new SampledDraft(q, CHAIN.temperature(), CHAIN.topK(), CHAIN.topP(), CHAIN.minP(), verifySeed)));
                for (int i = 0; i <= k; i++, row++) {
                    tokens[row] = context[n - 1 + i];
                    positions[row] = n - 1 + i;
                    sequences[row] = seq;
                    all[row] = row;
                }
            }
            Batch batch = new Batch(tokens, positions, sequences, all);
            List<SampledVerdict> fromKept = main.sampling().verifySampled(batch, mainKv, kept).verdicts();
            assertEquals(main.sampling().verifySampled(batch, mainKv, uploaded).verdicts(), fromKept, "kept and uploaded rows");
            for (int j = 0; j < ks.length; j++) {
                assertEquals(main.sampling().verifySampled(alone[j], mainKv, kept.get(j).draft()), fromKept.get(j), "sequence " + j + " alone");
            }
        }
    }

    /** {@link #verifyKeptAndUploaded(CudaSampling, PagedKvCache, KvCache, KvCache, int, int, long)} on caches of its own. */
    static SampledVerdict[] verifyKeptAndUploaded(CudaModel drafter, int first, int k, long seed) {
        PagedKvCache tables = new PagedKvCache(16, 4);
        try (KvCache draftKv = drafter.createKvCache(tables); KvCache mainKv = main.createKvCache(tables)) {
            return verifyKeptAndUploaded(drafter.sampling(), tables, draftKv, mainKv, first, k, seed);
        }
    }

    /**
     * Drafts k tokens after the prompt in a new sequence, the draws filling kept rows {@code [first, first + k)},
     * then verifies them with the main model against those kept rows and against the same rows uploaded: the two
     * verdicts, kept first.
     */
    static SampledVerdict[] verifyKeptAndUploaded(CudaSampling drafting, PagedKvCache tables, KvCache draftKv, KvCache mainKv, int first, int k, long seed) {
        int[] context = Arrays.copyOf(PROMPT, PROMPT.length + k);
        int seq = tables.createSequence();
        try {
            tables.reserve(seq, PROMPT.length + k);
            int n = PROMPT.length;
            context[n] = drafting.sampleDraftAsync(Batch.of(seq, 0, PROMPT, false), draftKv, draw(first, seed)).toCompletableFuture().join().token();
            for (int i = 1; i < k; i++) {
                context[n + i] = drafting.sampleDraftAsync(Batch.of(seq, n + i - 1, new int[] {context[n + i - 1]}, false), draftKv, draw(first + i, seed))
                        .toCompletableFuture().join().token();
            }
            float[] q = new float[k * vocab];
            for (int i = 0; i < k; i++) System.arraycopy(drafting.keptRow(first + i), 0, q, i * vocab, vocab);

            main.forward(Batch.of(seq, 0, Arrays.copyOf(PROMPT, n - 1), false), mainKv);
            Batch verification = Batch.of(seq, n - 1, Arrays.copyOfRange(context, n - 1, n + k), true);
            long verifySeed = seed * 31 + 7;
            SampledVerdict kept = main.sampling().verifySampled(verification, mainKv,
                    SampledDraft.kept(drafting, first, CHAIN.temperature(), CHAIN.topK(), CHAIN.topP(), CHAIN.minP(), verifySeed));
            SampledVerdict uploaded = main.sampling().verifySampled(verification, mainKv,
                    new SampledDraft(q, CHAIN.temperature(), CHAIN.topK(), CHAIN.topP(), CHAIN.minP(), verifySeed));
            return new SampledVerdict[] {kept, uploaded};
        } finally {
            tables.release(seq);
        }
    }

    @Test
    void badDrawsAndKeptVerificationsAreRefusedBeforeAnythingRuns() {
        PagedKvCache tables = new PagedKvCache(16, 4);
        try (KvCache kv = draft.createKvCache(tables); KvCache mainKv = main.createKvCache(tables); KvCache otherKv = elsewhere.createKvCache(tables)) {
            int seq = tables.createSequence();
            tables.reserve(seq, 8);
            var e = assertThrows(IllegalArgumentException.class, () -> drafting.sampleDraftAsync(Batch.of(seq, 0, new int[] {1, 2}, true), kv, draw(0, 1)));
            assertTrue(e.getMessage().contains("exactly one row"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> drafting.sampleDraftAsync(Batch.of(seq, 0, new int[] {1}, false), kv, draw(KEPT_ROWS, 1)));
            assertTrue(e.getMessage().contains("outside [0, 34)"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> drafting.sampleDraftAsync(Batch.of(seq, 0, new int[] {1}, false), kv,
                    new DraftDraw(0, 0f, 0, 1f, 0f, 1)));
            assertTrue(e.getMessage().contains("positive temperature"), e.getMessage());

            Batch verification = Batch.of(seq, 0, new int[] {1, 2, 3}, true);
            drafting.sampleDraftAsync(Batch.of(seq, 0, new int[] {1}, false), kv, draw(0, 1)).toCompletableFuture().join();
            e = assertThrows(IllegalArgumentException.class, () -> main.sampling().verifySampled(verification, mainKv, SampledDraft.kept(elsewhere.sampling(), 0, 1f, 0, 1f, 0f, 1)));
            assertTrue(e.getMessage().contains("same device"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> main.sampling().verifySampled(verification, mainKv, SampledDraft.kept(drafting, 33, 1f, 0, 1f, 0f, 1)));
            assertTrue(e.getMessage().contains("[33, 35)"), e.getMessage());
        }
    }

    @Test
    void theCpuBackendDoesNotSampleOnADevice() {
        try (CpuBackend cpu = new CpuBackend(); LoadedModel onCpu = cpu.load(draftFile, LoadOptions.defaults().withThreads(1))) {
            assertTrue(onCpu.deviceSampling().isEmpty());
        }
    }

    static int drawAfterPrompt(long seed) {
        PagedKvCache tables = new PagedKvCache(16, 4);
        try (KvCache kv = draft.createKvCache(tables)) {
            int seq = tables.createSequence();
            tables.reserve(seq, PROMPT.length + 1);
            return drafting.sampleDraftAsync(Batch.of(seq, 0, PROMPT, false), kv, draw(0, seed)).toCompletableFuture().join().token();
        }
    }

    /** accept_sampled launched directly with no draft tokens: the token it draws from {@code probs} at {@code position}. */
    static int drawByHand(float[] probs, long seed, int position) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment p = arena.allocate((long) vocab * Float.BYTES, 64);
            MemorySegment.copy(probs, 0, p, ValueLayout.JAVA_FLOAT, 0, vocab);
            MemorySegment none = arena.allocate(Integer.BYTES, 64), meta = arena.allocate(3 * Integer.BYTES, 64), verdict = arena.allocate(2 * Integer.BYTES, 64);
            meta.setAtIndex(ValueLayout.JAVA_INT, 0, (int) seed);
            meta.setAtIndex(ValueLayout.JAVA_INT, 1, (int) (seed >>> 32));
            meta.setAtIndex(ValueLayout.JAVA_INT, 2, position);
            HostKernels.get().launch(Kernel.ACCEPT_SAMPLED, LaunchGeometry.acceptSampled(1), p, p, none, meta, verdict, 0, vocab);
            assertEquals(0, verdict.getAtIndex(ValueLayout.JAVA_INT, 0));
            return verdict.getAtIndex(ValueLayout.JAVA_INT, 1);
        }
    }
}
