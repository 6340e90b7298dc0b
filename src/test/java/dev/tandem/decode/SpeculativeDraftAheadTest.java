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
