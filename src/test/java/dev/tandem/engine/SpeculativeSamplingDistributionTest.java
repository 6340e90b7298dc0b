package dev.tandem.engine;

import dev.tandem.decode.Distribution;
import dev.tandem.decode.Sampler;
import dev.tandem.testing.ChiSquare;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Speculative sampling in the engine is lossless in distribution: over many seeded runs on a 6-token table model,
 * the tokens the engine generates follow the main model's own distribution (computed exactly by enumerating every
 * continuation through the same sampler chain), with a draft model — drafting after the verification or ahead of
 * it — and with n-gram lookup. A chi-square test per pair of positions, at a false-failure rate of 1e-5 each; the
 * runs are seeded, so the outcome is deterministic. A negative control shows the test has teeth: sampling from the
 * draft model alone fails it. The runs go through the real scheduler, {@link #PARALLEL} sequences decoded together.
 */
class SpeculativeSamplingDistributionTest {
    static final int V = 6, LENGTH = 4, RUNS = 20_000, PARALLEL = 16;
    static final double FALSE_FAILURE_RATE = 1e-5;
    static final int[] PROMPT = {1, 2};
    static final SamplingSettings SETTINGS = new SamplingSettings(0.9, 5, 0.95, 0.02, 1.2, 3, 0);

    final TableModel main = new TableModel(V, TableModel.randomTable(V, 11, 1.5f), 0);
    final TableModel draft = new TableModel(V, TableModel.perturbed(main.table, 12, 1.0f), 0);
    final double[] exact = exactDistribution(main);

    @Test
    void plainSamplingFollowsTheMainModel() {
        try (Engine engine = TableEngine.plain(main, PARALLEL)) {
            assertFollowsMain(engine, DraftSettings.off(), "plain");
        }
    }

    @ParameterizedTest(name = "draft-ahead: {0}")
    @ValueSource(booleans = {false, true})
    void speculativeSamplingWithADraftModelFollowsTheMainModel(boolean draftAhead) {
        try (Engine engine = TableEngine.speculative(main, draft, PARALLEL, draftAhead)) {
            assertFollowsMain(engine, DraftSettings.model(TableEngine.DRAFT).withLimits(3, 0, 0), "draft model, draft-max 3, draft-ahead " + draftAhead);
        }
    }

    @ParameterizedTest(name = "draft-ahead: {0}")
    @ValueSource(booleans = {false, true})
    void speculativeSamplingWithPMinAndDraftMinFollowsTheMainModel(boolean draftAhead) {
        try (Engine engine = TableEngine.speculative(main, draft, PARALLEL, draftAhead)) {
            assertFollowsMain(engine, DraftSettings.model(TableEngine.DRAFT).withLimits(3, 2, 0.3), "draft model, max 3, min 2, p-min 0.3, draft-ahead " + draftAhead);
        }
    }

    @Test
    void speculativeSamplingWithNgramLookupFollowsTheMainModel() {
        try (Engine engine = TableEngine.plain(main, PARALLEL)) {
            assertFollowsMain(engine, DraftSettings.ngram().withLimits(2, 0, 0), "n-gram");
        }
    }

    @Test
    void samplingFromTheDraftAloneFailsTheTest() {
        try (Engine draftAlone = TableEngine.plain(draft, PARALLEL)) {
            double[] chi = chiSquares(draftAlone, DraftSettings.off());
            System.out.printf("negative control (draft alone): chi-square %.1f (critical %.1f), %.1f (critical %.1f)%n", chi[0], chi[1], chi[2], chi[3]);
            assertTrue(chi[0] > chi[1] || chi[2] > chi[3], "the draft's own distribution should be told apart from the main model's");
        }
    }

    /** Models whose passes complete later on another thread, as a GPU stream's do, give the same tokens for the same seeds. */
    @ParameterizedTest(name = "draft-ahead: {0}")
    @ValueSource(booleans = {false, true})
    void asyncModelsGiveTheSameTokensForTheSameSeeds(boolean draftAhead) {
        try (TableModel asyncMain = new TableModel(V, main.table, 1); TableModel asyncDraft = new TableModel(V, draft.table, 1);
             Engine sync = TableEngine.speculative(main, draft, PARALLEL, draftAhead);
             Engine async = TableEngine.speculative(asyncMain, asyncDraft, PARALLEL, draftAhead)) {
            List<GenerationRequest> requests = new ArrayList<>();
            for (SamplingSettings s : List.of(SamplingSettings.greedy(), SETTINGS)) {
                for (int seed = 0; seed < 20; seed++) {
                    requests.add(TableEngine.request(PROMPT, 12).sampling(s.withSeed(seed))
                            .draft(DraftSettings.model(TableEngine.DRAFT).withLimits(3, 0, 0)).build());
                }
            }
            List<GenerationOutput> a = TableEngine.runAll(sync, requests, PARALLEL), b = TableEngine.runAll(async, requests, PARALLEL);
            for (int i = 0; i < requests.size(); i++) {
                assertArrayEquals(a.get(i).tokenIds(), b.get(i).tokenIds(), "request " + i + ": " + requests.get(i).sampling());
            }
        }
    }

    /**
     * Greedy speculation is plain greedy decoding on 30 random tables, whatever the draft length policy (fixed, with
     * draft-min and p-min, adaptive), drafting ahead or not; the stats add up.
     */
    @ParameterizedTest(name = "draft-ahead: {0}")
    @ValueSource(booleans = {false, true})
    void greedySpeculativeEqualsGreedyPlainOnTableModels(boolean draftAhead) {
        for (int seed = 0; seed < 30; seed++) {
            TableModel m = new TableModel(V, TableModel.randomTable(V, 100 + seed, 2f), 0);
            TableModel d = new TableModel(V, TableModel.perturbed(m.table, 200 + seed, 1.5f), 0);
            DraftSettings draft = DraftSettings.model(TableEngine.DRAFT);
            List<DraftSettings> policies = List.of(draft.withLimits(1 + seed % 7, 0, 0), draft, draft.withLimits(5, 3, 0),
                    draft.withLimits(16, 0, 0).withAdaptive(true));
            try (Engine engine = TableEngine.speculative(m, d, 1, draftAhead)) {
                int[] plain = engine.generateBlocking(TableEngine.request(PROMPT, 40).build()).tokenIds();
                for (DraftSettings policy : policies) {
                    GenerationOutput out = engine.generateBlocking(TableEngine.request(PROMPT, 40).draft(policy).build());
                    assertArrayEquals(plain, out.tokenIds(), "table seed " + seed + ", " + policy);
                    StatsChecks.assertConsistent(out.stats());
                }
            }
        }
    }

    void assertFollowsMain(Engine engine, DraftSettings draft, String what) {
        double[] chi = chiSquares(engine, draft);
        System.out.printf("%s: chi-square tokens 1-2 %.1f (critical %.1f), tokens 3-4 %.1f (critical %.1f)%n", what, chi[0], chi[1], chi[2], chi[3]);
        assertTrue(chi[0] <= chi[1], what + ": tokens 1-2 do not follow the main model, chi-square " + chi[0] + " > " + chi[1]);
        assertTrue(chi[2] <= chi[3], what + ": tokens 3-4 do not follow the main model, chi-square " + chi[2] + " > " + chi[3]);
    }

    /** {chi-square of tokens 1-2, its critical value, chi-square of tokens 3-4, its critical value}, seed = run. */
    double[] chiSquares(Engine engine, DraftSettings draft) {
        List<GenerationRequest> requests = new ArrayList<>(RUNS);
        for (int run = 0; run < RUNS; run++) requests.add(TableEngine.request(PROMPT, LENGTH).sampling(SETTINGS.withSeed(run)).draft(draft).build());
        long[] first = new long[V * V], last = new long[V * V];
        for (GenerationOutput out : TableEngine.runAll(engine, requests, PARALLEL)) {
            int[] t = out.tokenIds();
            first[t[0] * V + t[1]]++;
            last[t[2] * V + t[3]]++;
        }
        double[] e1 = new double[V * V], e2 = new double[V * V];
        for (int s = 0; s < exact.length; s++) {
            int t0 = s / (V * V * V), t1 = s / (V * V) % V, t2 = s / V % V, t3 = s % V;
            e1[t0 * V + t1] += exact[s];
            e2[t2 * V + t3] += exact[s];
        }
        ChiSquare.Fit a = ChiSquare.statistic(first, e1, RUNS), b = ChiSquare.statistic(last, e2, RUNS);
        return new double[] {a.statistic(), a.critical(FALSE_FAILURE_RATE), b.statistic(), b.critical(FALSE_FAILURE_RATE)};
    }

    /** Probability of every 4-token continuation of the prompt under plain sampling from {@code m}. */
    static double[] exactDistribution(TableModel m) {
        double[] out = new double[V * V * V * V];
        Sampler sampler = new Sampler(SETTINGS.samplerSettings(), V);
        Distribution p = new Distribution(V);
        int[] ctx = new int[PROMPT.length + LENGTH];
        System.arraycopy(PROMPT, 0, ctx, 0, PROMPT.length);
        enumerate(m, sampler, p, ctx, PROMPT.length, 1.0, 0, out);
        return out;
    }

    private static void enumerate(TableModel m, Sampler sampler, Distribution p, int[] ctx, int length, double prob, int index, double[] out) {
        if (length == ctx.length) {
            out[index] += prob;
            return;
        }
        float[] logits = new float[V];
        for (int t = 0; t < V; t++) logits[t] = m.logit(ctx[length - 2], ctx[length - 1], t);
        sampler.fill(logits, V, ctx, length, p);
        double[] probs = new double[V];
        for (int t = 0; t < V; t++) probs[t] = p.p(t);
        for (int t = 0; t < V; t++) {
            if (probs[t] == 0) continue;
            ctx[length] = t;
            enumerate(m, sampler, p, ctx, length + 1, prob * probs[t], index * V + t, out);
        }
    }
}
