package dev.tandem.decode;

import dev.tandem.testing.ChiSquare;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.function.LongFunction;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Speculative sampling is lossless in distribution: over many seeded runs on a 6-token table model, the tokens
 * it generates follow the main model's own distribution (computed exactly by enumerating every continuation
 * through the same sampler chain). A chi-square test per pair of positions, at a false-failure rate of 1e-5
 * each; the runs are seeded, so the outcome is deterministic. A negative control shows the test has teeth:
 * sampling from the draft model alone fails it.
 */
class SpeculativeSamplingDistributionTest {
    static final int V = 6, LENGTH = 4, RUNS = 20_000;
    static final double FALSE_FAILURE_RATE = 1e-5;
    static final int[] PROMPT = {1, 2};
    static final SamplerSettings SETTINGS = new SamplerSettings(0.9f, 5, 0.95f, 0.02f, 1.2f, 3, 0);

    final TableModel main = new TableModel(V, TableModel.randomTable(V, 11, 1.5f), 0);
    final TableModel draft = new TableModel(V, TableModel.perturbed(main.table, 12, 1.0f), 0);
    final double[] exact = exactDistribution(main);

    @Test
    void plainSamplingFollowsTheMainModel() {
        assertFollowsMain(seed -> new PlainGenerator(main, SETTINGS.withSeed(seed)), "plain");
    }

    @Test
    void speculativeSamplingWithADraftModelFollowsTheMainModel() {
        assertFollowsMain(seed -> new SpeculativeGenerator(main, new ModelDrafter(draft), DraftPolicy.Fixed.always(3), SETTINGS.withSeed(seed)), "draft model, draft-max 3");
    }

    @Test
    void speculativeSamplingWithPMinAndDraftMinFollowsTheMainModel() {
        assertFollowsMain(seed -> new SpeculativeGenerator(main, new ModelDrafter(draft), new DraftPolicy.Fixed(3, 2, 0.3f), SETTINGS.withSeed(seed)), "draft model, max 3, min 2, p-min 0.3");
    }

    @Test
    void speculativeSamplingWithNgramLookupFollowsTheMainModel() {
        assertFollowsMain(seed -> new SpeculativeGenerator(main, new NgramDrafter(1, 2), DraftPolicy.Fixed.always(2), SETTINGS.withSeed(seed)), "n-gram");
    }

    @Test
    void samplingFromTheDraftAloneFailsTheTest() {
        double[] chi = chiSquares(seed -> new PlainGenerator(draft, SETTINGS.withSeed(seed)));
        System.out.printf("negative control (draft alone): chi-square %.1f (critical %.1f), %.1f (critical %.1f)%n", chi[0], chi[1], chi[2], chi[3]);
        assertTrue(chi[0] > chi[1] || chi[2] > chi[3], "the draft's own distribution should be told apart from the main model's");
    }

    @Test
    void asyncModelsGiveTheSameTokensForTheSameSeeds() {
        TableModel asyncMain = new TableModel(V, main.table, 1), asyncDraft = new TableModel(V, draft.table, 1);
        try (asyncMain; asyncDraft) {
            for (SamplerSettings s : List.of(SamplerSettings.greedy(), SETTINGS)) {
                for (int seed = 0; seed < 20; seed++) {
                    GenerationLimits limits = GenerationLimits.of(12);
                    int[] sync = new SpeculativeGenerator(main, new ModelDrafter(draft), DraftPolicy.Fixed.always(3), s.withSeed(seed)).generate(PROMPT, limits).tokens();
                    int[] async = new SpeculativeGenerator(asyncMain, new ModelDrafter(asyncDraft), DraftPolicy.Fixed.always(3), s.withSeed(seed)).generate(PROMPT, limits).tokens();
                    assertArrayEquals(sync, async, "seed " + seed + " with " + s);
                }
            }
        }
    }

    @Test
    void greedySpeculativeEqualsGreedyPlainOnTableModels() {
        for (int seed = 0; seed < 30; seed++) {
            TableModel m = new TableModel(V, TableModel.randomTable(V, 100 + seed, 2f), 0);
            TableModel d = new TableModel(V, TableModel.perturbed(m.table, 200 + seed, 1.5f), 0);
            int[] plain = new PlainGenerator(m, SamplerSettings.greedy()).generate(PROMPT, GenerationLimits.of(40)).tokens();
            for (DraftPolicy policy : List.of(DraftPolicy.Fixed.always(1 + seed % 7), DraftPolicy.Fixed.defaults(), new DraftPolicy.Fixed(5, 3, 0f), DraftPolicy.Adaptive.defaults())) {
                GenerationResult r = new SpeculativeGenerator(m, new ModelDrafter(d), policy, SamplerSettings.greedy()).generate(PROMPT, GenerationLimits.of(40));
                assertArrayEquals(plain, r.tokens(), "table seed " + seed + ", " + policy);
                StatsChecks.assertConsistent(r.stats());
            }
        }
    }

    void assertFollowsMain(LongFunction<Generator> generator, String what) {
        double[] chi = chiSquares(generator);
        System.out.printf("%s: chi-square tokens 1-2 %.1f (critical %.1f), tokens 3-4 %.1f (critical %.1f)%n", what, chi[0], chi[1], chi[2], chi[3]);
        assertTrue(chi[0] <= chi[1], what + ": tokens 1-2 do not follow the main model, chi-square " + chi[0] + " > " + chi[1]);
        assertTrue(chi[2] <= chi[3], what + ": tokens 3-4 do not follow the main model, chi-square " + chi[2] + " > " + chi[3]);
    }

    /** {chi-square of tokens 1-2, its critical value, chi-square of tokens 3-4, its critical value}. */
    double[] chiSquares(LongFunction<Generator> generatorWithSeed) {
        long[] first = new long[V * V], last = new long[V * V];
        for (int run = 0; run < RUNS; run++) {
            int[] t = generatorWithSeed.apply(run).generate(PROMPT, GenerationLimits.of(LENGTH)).tokens();
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
        Sampler sampler = new Sampler(SETTINGS, V);
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
