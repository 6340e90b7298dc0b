package dev.tandem.decode;

import dev.tandem.testing.ReferenceRecords;
import dev.tandem.testing.ReferenceRecords.Generation;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link DraftAheadGenerator} on the CPU backend and on table models: greedy output equals plain decoding
 * (synchronous and asynchronous models alike), sampled output follows the main model's distribution, and the
 * stats add up. The CUDA backend's overlap is shown in {@code runtime.cuda.CudaDraftAheadTest}.
 */
class SpeculativeDraftAheadTest {
    @Test
    void greedyDraftAheadEqualsPlainOnTableModels() {
        for (int seed = 0; seed < 30; seed++) {
            TableModel m = new TableModel(6, TableModel.randomTable(6, 100 + seed, 2f), 0);
            // Small noise: the draft often guesses the bonus token right, so reused guesses are exercised.
            TableModel d = new TableModel(6, TableModel.perturbed(m.table, 200 + seed, seed % 2 == 0 ? 0.3f : 1.5f), 0);
            int[] plain = new PlainGenerator(m, SamplerSettings.greedy()).generate(new int[] {1, 2}, GenerationLimits.of(40)).tokens();
            for (int draftMax = 1; draftMax <= 8; draftMax++) {
                GenerationResult r = new DraftAheadGenerator(m, d, draftMax, SamplerSettings.greedy()).generate(new int[] {1, 2}, GenerationLimits.of(40));
                assertArrayEquals(plain, r.tokens(), "table seed " + seed + ", draft-max " + draftMax);
                StatsChecks.assertConsistent(r.stats());
            }
        }
    }

    @Test
    void asynchronousModelsGiveTheSameTokens() {
        TableModel m = new TableModel(6, TableModel.randomTable(6, 7, 2f), 0);
        TableModel d = new TableModel(6, TableModel.perturbed(m.table, 8, 0.5f), 0);
        TableModel asyncMain = new TableModel(6, m.table, 1), asyncDraft = new TableModel(6, d.table, 1);
        try (asyncMain; asyncDraft) {
            for (SamplerSettings s : List.of(SamplerSettings.greedy(), SpeculativeSamplingDistributionTest.SETTINGS)) {
                for (int seed = 0; seed < 10; seed++) {
                    int[] sync = new DraftAheadGenerator(m, d, 3, s.withSeed(seed)).generate(new int[] {1, 2}, GenerationLimits.of(16)).tokens();
                    int[] async = new DraftAheadGenerator(asyncMain, asyncDraft, 3, s.withSeed(seed)).generate(new int[] {1, 2}, GenerationLimits.of(16)).tokens();
                    assertArrayEquals(sync, async, "seed " + seed + " with " + s);
                }
            }
        }
    }

    @Test
    void sampledDraftAheadFollowsTheMainModel() {
        SpeculativeSamplingDistributionTest chi = new SpeculativeSamplingDistributionTest();
        chi.assertFollowsMain(seed -> new DraftAheadGenerator(chi.main, chi.draft, 2, SpeculativeSamplingDistributionTest.SETTINGS.withSeed(seed)), "draft-ahead, draft-max 2");
    }

    @Test
    void sampledDraftAheadWithPMinAndDraftMinFollowsTheMainModel() {
        SpeculativeSamplingDistributionTest chi = new SpeculativeSamplingDistributionTest();
        chi.assertFollowsMain(seed -> new DraftAheadGenerator(chi.main, chi.draft, new DraftPolicy.Fixed(3, 2, 0.3f),
                SpeculativeSamplingDistributionTest.SETTINGS.withSeed(seed)), "draft-ahead, max 3, min 2, p-min 0.3");
    }

    /**
     * Greedy drafts are the draft's argmax chain cut at p-min whether made ahead or after the verification, so on
     * table models (exact lookups) draft-ahead drafts, verifies, accepts and discards exactly what
     * {@link SpeculativeGenerator} does with the same fixed policy.
     */
    @Test
    void greedyDraftAheadCountsWhatTheSpeculativeGeneratorCounts() {
        for (int seed = 0; seed < 20; seed++) {
            TableModel m = new TableModel(6, TableModel.randomTable(6, 100 + seed, 2f), 0);
            TableModel d = new TableModel(6, TableModel.perturbed(m.table, 200 + seed, seed % 2 == 0 ? 0.3f : 1.5f), 0);
            for (DraftPolicy.Fixed policy : List.of(DraftPolicy.Fixed.always(3), DraftPolicy.Fixed.defaults(), new DraftPolicy.Fixed(4, 0, 0.5f),
                    new DraftPolicy.Fixed(4, 3, 0.4f), new DraftPolicy.Fixed(5, 5, 0.2f))) {
                GenerationStats spec = new SpeculativeGenerator(m, new ModelDrafter(d), policy, SamplerSettings.greedy())
                        .generate(new int[] {1, 2}, GenerationLimits.of(40)).stats();
                GenerationStats ahead = new DraftAheadGenerator(m, d, policy, SamplerSettings.greedy())
                        .generate(new int[] {1, 2}, GenerationLimits.of(40)).stats();
                String what = "table seed " + seed + ", " + policy;
                assertEquals(spec.draftedTokens(), ahead.draftedTokens(), what + ": drafted");
                assertEquals(spec.acceptedTokens(), ahead.acceptedTokens(), what + ": accepted");
                assertEquals(spec.rejectedTokens(), ahead.rejectedTokens(), what + ": rejected");
                assertEquals(spec.ignoredTokens(), ahead.ignoredTokens(), what + ": ignored");
                assertArrayEquals(spec.acceptedLengthHistogram(), ahead.acceptedLengthHistogram(), what + ": accepted lengths");
            }
        }
    }

    /**
     * The reference engine's speculative run of the Q8_0 pair (draft-max 16, draft-min 0, p-min 0.75, 24 prompts,
     * 128 tokens): draft-ahead's output is plain decoding's on every prompt, and with the same p-min it drafts
     * about as rarely and is accepted about as often (within 2 points of the reference's 99.8 %).
     */
    @Test
    void greedyDraftAheadWithTheReferencePMinOnTheQ8Pair() {
        java.util.Map<String, int[]> promptTokens = ReferenceRecords.generations("kjv-main-q8_0.jsonl").stream()
                .collect(java.util.stream.Collectors.toMap(Generation::prompt, Generation::promptTokens, (a, b) -> a));
        List<com.fasterxml.jackson.databind.JsonNode> refs = ReferenceRecords.jsonl(dev.tandem.testing.SharedData.reference("speculative/kjv-q8_0.jsonl"));
        List<String> differ = new ArrayList<>();
        long drafted = 0, accepted = 0, refDrafted = 0, refAccepted = 0;
        try (KjvPair pair = KjvPair.q8()) {
            PlainGenerator plain = new PlainGenerator(pair.main, SamplerSettings.greedy());
            DraftAheadGenerator ahead = new DraftAheadGenerator(pair.main, pair.draft, new DraftPolicy.Fixed(16, 0, 0.75f), SamplerSettings.greedy());
            for (var ref : refs) {
                assertEquals(16, ref.get("draft_max").asInt());
                assertEquals(0, ref.get("draft_min").asInt());
                assertEquals(0.75, ref.get("draft_p_min").asDouble(), 1e-6);
                String prompt = ref.get("prompt").asText();
                GenerationLimits limits = GenerationLimits.of(ref.get("n_predict").asInt());
                int[] expected = plain.generate(promptTokens.get(prompt), limits).tokens();
                GenerationResult r = ahead.generate(promptTokens.get(prompt), limits);
                StatsChecks.assertConsistent(r.stats());
                if (!Arrays.equals(expected, r.tokens())) differ.add(prompt + " from token " + ReferenceRecords.matchingPrefix(expected, r.tokens()));
                drafted += r.stats().draftedTokens() - r.stats().ignoredTokens();
                accepted += r.stats().acceptedTokens();
                refDrafted += ref.get("draft_n").asLong();
                refAccepted += ref.get("draft_n_accepted").asLong();
            }
        }
        double rate = 100.0 * accepted / drafted, refRate = 100.0 * refAccepted / refDrafted;
        System.out.printf("draft-ahead Q8_0 max 16 p-min 0.75: identical to plain %d/%d; drafted %d, accepted %d (%.1f %%); reference %d, %d (%.1f %%)%n",
                refs.size() - differ.size(), refs.size(), drafted, accepted, rate, refDrafted, refAccepted, refRate);
        assertEquals(List.of(), differ);
        assertTrue(rate >= refRate - 2, "acceptance " + rate + " % is more than 2 points below the reference's " + refRate + " %");
    }

    @Test
    void greedyDraftAheadReproducesTheReferenceOnTheKjvPair() {
        List<Generation> refs = ReferenceRecords.generations("kjv-main-f32.jsonl");
        List<String> failures = new ArrayList<>();
        long drafted = 0, accepted = 0;
        try (KjvPair pair = KjvPair.f32()) {
            for (int draftMax = 1; draftMax <= 8; draftMax++) {
                Generation g = refs.get(draftMax - 1);
                GenerationResult r = new DraftAheadGenerator(pair.main, pair.draft, draftMax, SamplerSettings.greedy())
                        .generate(g.promptTokens(), GenerationLimits.of(g.tokens().length));
                drafted += r.stats().draftedTokens();
                accepted += r.stats().acceptedTokens();
                if (!Arrays.equals(g.tokens(), r.tokens())) {
                    failures.add(String.format("'%s' draft-max %d: first %d of %d match", g.prompt(), draftMax,
                            ReferenceRecords.matchingPrefix(r.tokens(), g.tokens()), g.tokens().length));
                }
                StatsChecks.assertConsistent(r.stats());
            }
        }
        System.out.printf("draft-ahead on the CPU: drafted %d, accepted %d%n", drafted, accepted);
        assertEquals(List.of(), failures);
        assertTrue(accepted > 0, "the KJV draft should get some tokens accepted");
    }
}
