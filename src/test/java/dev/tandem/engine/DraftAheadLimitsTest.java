package dev.tandem.engine;

import dev.tandem.runtime.Batch;
import dev.tandem.runtime.ForwardResult;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.testing.ForwardingModel;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletionStage;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The engine drafting ahead honours the fixed policy's draft-p-min and draft-min as it does drafting after the
 * verification (llama.cpp's speculative example): a draft stops before the first token the draft model is less sure
 * of than p-min, and under greedy decoding a draft shorter than draft-min is not verified (a plain step instead).
 * Greedy output stays plain decoding's. Checked on 6-token table models, whose draft confidences can be read off the
 * table, by watching the main model's verification passes.
 */
class DraftAheadLimitsTest {
    static final int V = 6, TOKENS = 40;
    static final int[] PROMPT = {1, 2};

    /** Plain greedy decoding of {@code m}: what every greedy speculative run must reproduce. */
    static int[] plain(TableModel m) {
        try (Engine engine = TableEngine.plain(m, 1)) {
            return engine.generateBlocking(TableEngine.request(PROMPT, TOKENS).build()).tokenIds();
        }
    }

    /** A greedy generation of TOKENS tokens by {@code main}, drafting ahead with {@code draft} under {@code policy}. */
    static GenerationOutput draftingAhead(LoadedModel main, TableModel draft, DraftSettings policy) {
        try (Engine engine = TableEngine.speculative(main, draft, 1, true)) {
            return engine.generateBlocking(TableEngine.request(PROMPT, TOKENS).draft(policy).build());
        }
    }

    static DraftSettings limits(int draftMax, int draftMin, double pMin) {
        return DraftSettings.model(TableEngine.DRAFT).withLimits(draftMax, draftMin, pMin);
    }

    @Test
    void pMinOneDraftsNothingAndDecodesPlainly() {
        for (int seed = 0; seed < 10; seed++) {
            TableModel m = new TableModel(V, TableModel.randomTable(V, 100 + seed, 2f), 0);
            TableModel d = new TableModel(V, TableModel.perturbed(m.table, 200 + seed, 0.3f), 0);
            int[] plain = plain(m);
            GenerationOutput r = draftingAhead(m, d, limits(4, 0, 1));
            assertArrayEquals(plain, r.tokenIds(), "table seed " + seed);
            // No row of a random table is one-hot, so no token reaches probability 1.
            assertEquals(0, r.stats().draftTokens(), "table seed " + seed);
            assertEquals(0, r.stats().verificationPasses(), "table seed " + seed);
        }
    }

    /**
     * Every verified draft token was the draft's choice with top probability at least p-min, and a draft shorter
     * than the tokens allowed ends where the draft's next choice falls below p-min.
     */
    @Test
    void draftsStopWhereTheDraftIsLessSureThanPMin() {
        int verified = 0, stoppedEarly = 0;
        for (int seed = 0; seed < 20; seed++) {
            TableModel m = new TableModel(V, TableModel.randomTable(V, 100 + seed, 2f), 0);
            TableModel d = new TableModel(V, TableModel.perturbed(m.table, 200 + seed, 0.3f), 0);
            int[] plain = plain(m);
            for (float pMin : new float[] {0.3f, 0.5f}) {
                for (int draftMax : new int[] {2, 5}) {
                    Watched main = new Watched(m);
                    String what = "table seed " + seed + ", p-min " + pMin + ", draft-max " + draftMax;
                    GenerationOutput r = draftingAhead(main, d, limits(draftMax, 0, pMin));
                    assertArrayEquals(plain, r.tokenIds(), what);
                    StatsChecks.assertConsistent(r.stats());
                    int[] context = concat(PROMPT, r.tokenIds());
                    for (Batch b : main.verifications) {
                        int n = b.positions()[0] + 1, k = b.size() - 1;
                        for (int i = 1; i <= k; i++) {
                            assertTrue(confidence(d, context, b, i - 1) >= pMin, what + ": draft token " + i + " of the draft at " + n);
                        }
                        int limit = Math.min(draftMax, TOKENS - (n - PROMPT.length) - 1);
                        if (k < limit) {
                            stoppedEarly++;
                            assertTrue(confidence(d, context, b, k) < pMin, what + ": the draft of " + k + " at " + n + " stopped early");
                        }
                        verified++;
                    }
                }
            }
        }
        assertTrue(verified > 0 && stoppedEarly > 0, verified + " drafts verified, " + stoppedEarly + " stopped early");
    }

    @Test
    void greedyDraftsShorterThanDraftMinAreNotVerified() {
        long ignored = 0;
        for (int seed = 0; seed < 20; seed++) {
            TableModel m = new TableModel(V, TableModel.randomTable(V, 100 + seed, 2f), 0);
            TableModel d = new TableModel(V, TableModel.perturbed(m.table, 200 + seed, 0.3f), 0);
            int[] plain = plain(m);
            Watched main = new Watched(m);
            GenerationOutput r = draftingAhead(main, d, limits(4, 3, 0.4));
            assertArrayEquals(plain, r.tokenIds(), "table seed " + seed);
            StatsChecks.assertConsistent(r.stats());
            for (Batch b : main.verifications) assertTrue(b.size() - 1 >= 3, "table seed " + seed + ": a draft of " + (b.size() - 1) + " was verified");
            ignored += r.stats().ignoredDraftTokens();
        }
        assertTrue(ignored > 0, "some drafts should have been too short");
    }

    @Test
    void greedyWithPMinAndDraftMinEqualsPlainOnAsynchronousModels() {
        for (int seed = 0; seed < 10; seed++) {
            TableModel m = new TableModel(V, TableModel.randomTable(V, 300 + seed, 2f), 0);
            TableModel d = new TableModel(V, TableModel.perturbed(m.table, 400 + seed, seed % 2 == 0 ? 0.3f : 1.5f), 0);
            int[] plain = plain(m);
            try (TableModel asyncMain = new TableModel(V, m.table, 1); TableModel asyncDraft = new TableModel(V, d.table, 1)) {
                for (DraftSettings policy : List.of(limits(16, 0, 0.75), limits(3, 2, 0.5), limits(6, 6, 0.2))) {
                    GenerationOutput r = draftingAhead(asyncMain, asyncDraft, policy);
                    assertArrayEquals(plain, r.tokenIds(), "table seed " + seed + ", " + policy);
                    StatsChecks.assertConsistent(r.stats());
                }
            }
        }
    }

    /** The draft model's top probability for the token after batch row {@code row} (row 0: the main model's last token). */
    private static float confidence(TableModel draft, int[] context, Batch b, int row) {
        int pos = b.positions()[row];
        int before = row > 0 ? b.tokens()[row - 1] : pos > 0 ? context[pos - 1] : 0;
        float[] logits = new float[V];
        for (int t = 0; t < V; t++) logits[t] = draft.logit(before, b.tokens()[row], t);
        return ForwardResult.topProbability(logits, 0, V);
    }

    private static int[] concat(int[] a, int[] b) {
        int[] c = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }

    /** The main model, recording its verification passes (a logit row for every token), copied. */
    private static final class Watched extends ForwardingModel {
        final List<Batch> verifications = new ArrayList<>();

        Watched(TableModel target) { super(target); }

        @Override
        public ForwardResult forward(Batch batch, KvCache kv) {
            record(batch);
            return target.forward(batch, kv);
        }

        @Override
        public CompletionStage<ForwardResult> forwardAsync(Batch batch, KvCache kv) {
            record(batch);
            return target.forwardAsync(batch, kv);
        }

        private void record(Batch batch) {
            if (batch.size() > 1 && batch.logitRows().length == batch.size()) {
                verifications.add(new Batch(batch.tokens().clone(), batch.positions().clone(), batch.sequences().clone(), batch.logitRows().clone()));
            }
        }
    }
}
