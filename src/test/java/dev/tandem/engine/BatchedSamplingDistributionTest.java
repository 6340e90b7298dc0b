package dev.tandem.engine;

import dev.tandem.decode.Distribution;
import dev.tandem.decode.Sampler;
import dev.tandem.model.ModelFile;
import dev.tandem.runtime.Batch;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.LoadOptions;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.runtime.PagedKvCache;
import dev.tandem.runtime.cpu.CpuBackend;
import dev.tandem.testing.ChiSquare;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Issue 18, sampled: speculative sequences decoded together — drafting together, and drafting ahead during the
 * verification with each sequence's guess kept as its drafter state — still sample from the main model's own
 * distribution. Many seeded generations on the bundled KJV pair, eight at a time on one engine, have their first 4
 * tokens counted against the exact distribution of every 4-token continuation, computed from the main model's
 * logits through the same sampler chain (top-k 3 keeps it to at most 81). Pearson's chi-square at a false-failure rate
 * of 1e-5; the runs are seeded, so the outcome is deterministic. A negative control shows the test has teeth: the
 * draft model sampling alone fails it.
 */
class BatchedSamplingDistributionTest {
    static final int LENGTH = 4, RUNS = 4000, CONCURRENT = 8;
    /**
     * Each generation runs two tokens past the LENGTH counted, so that no step near the end is shortened by the token
     * budget: the first LENGTH tokens come from full drafts, verified and drafted ahead as in a long generation.
     */
    static final int GENERATED = LENGTH + 2;
    static final double FALSE_FAILURE_RATE = 1e-5;
    /** Temperature above 1 flattens the KJV model's confident next tokens, so that every branch is sampled often. */
    static final SamplingSettings SAMPLING = new SamplingSettings(1.6, 3, 1, 0, 1, 64, 0);
    static final String PROMPT = "And the LORD said unto";

    static int[] prompt;
    /** Probability of each LENGTH-token continuation under plain sampling from the main model, by its tokens. */
    static Map<List<Integer>, Double> exact;

    @BeforeAll
    static void exactDistribution() {
        try (Engine e = Tandem.builder().model(EngineTest.MAIN).backend("cpu").threads(1).parallel(1).build()) {
            prompt = e.tokenizer().encode(PROMPT, true, true);
        }
        exact = enumerate(EngineTest.MAIN);
    }

    @ParameterizedTest(name = "draft-ahead: {0}")
    @ValueSource(booleans = {false, true})
    void eightSpeculativeSequencesTogetherSampleTheMainModelsDistribution(boolean draftAhead) {
        try (Engine engine = Tandem.builder().model(EngineTest.MAIN).draft(EngineTest.DRAFT).backend("cpu").threads(1)
                .parallel(CONCURRENT).maxQueue(CONCURRENT).draftAhead(draftAhead).build()) {
            DraftSettings draft = DraftSettings.model(SpeculativeEngineTest.DRAFT_ID).withLimits(2, 0, 0);
            Fit fit = fit(engine, draft, RUNS);
            System.out.printf("batched speculative sampling, draft-ahead %s: chi-square %.1f (critical %.1f, %d df), %d drafted, %d accepted%n",
                    draftAhead, fit.chi.statistic(), fit.critical(), fit.chi.degreesOfFreedom(), fit.drafted, fit.accepted);
            assertEquals(0, fit.outside, "continuations plain sampling from the main model can never give");
            assertTrue(fit.accepted > RUNS / 4 && fit.accepted < fit.drafted, "speculation ran and was sometimes rejected: " + fit.accepted + " of " + fit.drafted);
            assertTrue(fit.chi.statistic() <= fit.critical(), "the tokens do not follow the main model: chi-square "
                    + fit.chi.statistic() + " > " + fit.critical());
        }
    }

    @Test
    void samplingFromTheDraftAloneFailsTheTest() {
        try (Engine draftAlone = Tandem.builder().model(EngineTest.DRAFT).backend("cpu").threads(1).parallel(CONCURRENT).maxQueue(CONCURRENT).build()) {
            Fit fit = fit(draftAlone, DraftSettings.off(), RUNS / 5);     // told apart by far: fewer runs do
            System.out.printf("negative control (draft alone): chi-square %.1f (critical %.1f), %d of %d outside the main model's continuations%n",
                    fit.chi.statistic(), fit.critical(), fit.outside, RUNS / 5);
            assertTrue(fit.outside > 0 || fit.chi.statistic() > fit.critical(), "the draft's own distribution should be told apart from the main model's");
        }
    }

    /** The statistic over the continuations plain sampling can give, and how many samples fell outside them. */
    record Fit(ChiSquare.Fit chi, long outside, long drafted, long accepted) {
        double critical() { return chi.critical(FALSE_FAILURE_RATE); }
    }

    /** {@code runs} generations, CONCURRENT at once (seed = run), counted by continuation against {@link #exact}. */
    static Fit fit(Engine engine, DraftSettings draft, int runs) {
        List<List<Integer>> outcomes = new ArrayList<>(exact.keySet());
        long[] observed = new long[outcomes.size()];
        double[] expected = new double[outcomes.size()];
        for (int i = 0; i < expected.length; i++) expected[i] = exact.get(outcomes.get(i));
        long drafted = 0, accepted = 0, outside = 0;
        for (int first = 0; first < runs; first += CONCURRENT) {
            List<Generation> wave = new ArrayList<>();
            for (int run = first; run < first + CONCURRENT; run++) {
                wave.add(engine.generate(GenerationRequest.builder().promptTokens(prompt).maxTokens(GENERATED).ignoreEndOfGeneration(true)
                        .sampling(SAMPLING.withSeed(run)).draft(draft).build()));
            }
            for (Generation g : wave) {
                GenerationOutput out = g.await();
                List<Integer> tokens = Arrays.stream(out.tokenIds(), 0, LENGTH).boxed().toList();
                int cell = outcomes.indexOf(tokens);
                if (cell < 0) outside++;
                else observed[cell]++;
                drafted += out.stats().draftTokens();
                accepted += out.stats().acceptedDraftTokens();
            }
        }
        return new Fit(ChiSquare.statistic(observed, expected, runs), outside, drafted, accepted);
    }

    /** Every continuation of {@link #prompt} of LENGTH tokens with its probability, from the main model's logits. */
    static Map<List<Integer>, Double> enumerate(Path model) {
        Map<List<Integer>, Double> out = new LinkedHashMap<>();
        try (ModelFile file = ModelFile.open(model); LoadedModel m = new CpuBackend().load(file, LoadOptions.defaults().withThreads(1))) {
            PagedKvCache tables = new PagedKvCache(16, 64);
            try (KvCache kv = m.createKvCache(tables)) {
                Sampler sampler = new Sampler(SAMPLING.samplerSettings(), m.config().vocabularySize());
                enumerate(m, kv, tables, sampler, new ArrayList<>(), 1.0, out);
            }
        }
        return out;
    }

    private static void enumerate(LoadedModel m, KvCache kv, PagedKvCache tables, Sampler sampler, List<Integer> prefix,
                                  double probability, Map<List<Integer>, Double> out) {
        if (prefix.size() == LENGTH) {
            out.put(List.copyOf(prefix), probability);
            return;
        }
        int[] context = new int[prompt.length + prefix.size()];
        System.arraycopy(prompt, 0, context, 0, prompt.length);
        for (int i = 0; i < prefix.size(); i++) context[prompt.length + i] = prefix.get(i);
        int seq = tables.createSequence();
        float[] logits = new float[m.config().vocabularySize()];
        try {
            tables.reserve(seq, context.length);
            m.forward(Batch.of(seq, 0, context, false), kv).copyLogits(0, logits);
        } finally {
            tables.release(seq);
        }
        Distribution p = new Distribution(m.config().vocabularySize());
        sampler.fill(logits, logits.length, context, context.length, p);
        for (int i = 0; i < p.size(); i++) {
            int token = p.token(i);
            prefix.add(token);
            enumerate(m, kv, tables, sampler, prefix, probability * p.p(token), out);
            prefix.removeLast();
        }
    }
}
