package dev.tandem.engine;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tandem.testing.ReferenceRecords;
import dev.tandem.testing.ReferenceRecords.Generation;
import dev.tandem.testing.SharedData;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The engine drafting ahead (the next draft made while the main model verifies) on table models and on the KJV pairs
 * on the CPU backend: greedy output equals plain decoding, the counts are those of drafting after the verification,
 * and the stats add up. Sampled draft-ahead's distribution and asynchronous models are in
 * {@link SpeculativeSamplingDistributionTest}, its draft-p-min and draft-min in {@link DraftAheadLimitsTest}, the
 * CUDA backend's overlap in {@code runtime.cuda.CudaDraftAheadTest}.
 */
class DraftAheadTest {
    static final int[] PROMPT = {1, 2};

    static DraftSettings limits(int draftMax, int draftMin, double pMin) {
        return DraftSettings.model(TableEngine.DRAFT).withLimits(draftMax, draftMin, pMin);
    }

    @Test
    void greedyDraftAheadEqualsPlainOnTableModels() {
        for (int seed = 0; seed < 30; seed++) {
            TableModel m = new TableModel(6, TableModel.randomTable(6, 100 + seed, 2f), 0);
            // Small noise: the draft often guesses the bonus token right, so reused guesses are exercised.
            TableModel d = new TableModel(6, TableModel.perturbed(m.table, 200 + seed, seed % 2 == 0 ? 0.3f : 1.5f), 0);
            try (Engine engine = TableEngine.speculative(m, d, 1, true)) {
                int[] plain = engine.generateBlocking(TableEngine.request(PROMPT, 40).build()).tokenIds();
                for (int draftMax = 1; draftMax <= 8; draftMax++) {
                    GenerationOutput r = engine.generateBlocking(TableEngine.request(PROMPT, 40).draft(limits(draftMax, 0, 0)).build());
                    assertArrayEquals(plain, r.tokenIds(), "table seed " + seed + ", draft-max " + draftMax);
                    StatsChecks.assertConsistent(r.stats());
                }
            }
        }
    }

    /**
     * Greedy drafts are the draft's argmax chain cut at p-min whether made ahead or after the verification, so on
     * table models (exact lookups) draft-ahead drafts, verifies, accepts and discards exactly what drafting after the
     * verification does with the same fixed policy. This caught the scheduler taking a plain step where a guess had
     * come true, its draft made ahead left unused (table seed 0, draft-max 3, 40 tokens: 8 verifications instead of 10).
     */
    @Test
    void greedyDraftAheadCountsWhatDraftingAfterTheVerificationCounts() {
        for (int seed = 0; seed < 20; seed++) {
            TableModel m = new TableModel(6, TableModel.randomTable(6, 100 + seed, 2f), 0);
            TableModel d = new TableModel(6, TableModel.perturbed(m.table, 200 + seed, seed % 2 == 0 ? 0.3f : 1.5f), 0);
            try (Engine after = TableEngine.speculative(m, d, 1, false); Engine ahead = TableEngine.speculative(m, d, 1, true)) {
                for (DraftSettings policy : List.of(limits(3, 0, 0), limits(16, 0, 0.75), limits(4, 0, 0.5), limits(4, 3, 0.4), limits(5, 5, 0.2))) {
                    GenerationRequest request = TableEngine.request(PROMPT, 40).draft(policy).build();
                    GenerationStats spec = after.generateBlocking(request).stats(), early = ahead.generateBlocking(request).stats();
                    String what = "table seed " + seed + ", " + policy;
                    assertEquals(spec.draftTokens(), early.draftTokens(), what + ": drafted");
                    assertEquals(spec.acceptedDraftTokens(), early.acceptedDraftTokens(), what + ": accepted");
                    assertEquals(spec.rejectedDraftTokens(), early.rejectedDraftTokens(), what + ": rejected");
                    assertEquals(spec.ignoredDraftTokens(), early.ignoredDraftTokens(), what + ": ignored");
                    assertArrayEquals(spec.acceptedLengthHistogram(), early.acceptedLengthHistogram(), what + ": accepted lengths");
                }
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
        Map<String, int[]> promptTokens = ReferenceRecords.generations("kjv-main-q8_0.jsonl").stream()
                .collect(Collectors.toMap(Generation::prompt, Generation::promptTokens, (a, b) -> a));
        List<JsonNode> refs = ReferenceRecords.jsonl(SharedData.reference("speculative/kjv-q8_0.jsonl"));
        List<String> differ = new ArrayList<>();
        long drafted = 0, accepted = 0, refDrafted = 0, refAccepted = 0;
        try (Engine engine = KjvEngines.q8(true)) {
            for (JsonNode ref : refs) {
                assertEquals(16, ref.get("draft_max").asInt());
                assertEquals(0, ref.get("draft_min").asInt());
                assertEquals(0.75, ref.get("draft_p_min").asDouble(), 1e-6);
                String prompt = ref.get("prompt").asText();
                int tokens = ref.get("n_predict").asInt();
                int[] expected = engine.generateBlocking(KjvEngines.request(promptTokens.get(prompt), tokens).build()).tokenIds();
                GenerationOutput r = engine.generateBlocking(KjvEngines.request(promptTokens.get(prompt), tokens)
                        .draft(KjvEngines.draft(engine).withLimits(16, 0, 0.75)).build());
                StatsChecks.assertConsistent(r.stats());
                if (!Arrays.equals(expected, r.tokenIds())) differ.add(prompt + " from token " + ReferenceRecords.matchingPrefix(expected, r.tokenIds()));
                drafted += r.stats().draftTokens() - r.stats().ignoredDraftTokens();
                accepted += r.stats().acceptedDraftTokens();
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
        try (Engine engine = KjvEngines.f32(true)) {
            for (int draftMax = 1; draftMax <= 8; draftMax++) {
                Generation g = refs.get(draftMax - 1);
                GenerationOutput r = engine.generateBlocking(KjvEngines.request(g.promptTokens(), g.tokens().length)
                        .draft(KjvEngines.draft(engine).withLimits(draftMax, 0, 0)).build());
                drafted += r.stats().draftTokens();
                accepted += r.stats().acceptedDraftTokens();
                if (!Arrays.equals(g.tokens(), r.tokenIds())) {
                    failures.add(String.format("'%s' draft-max %d: first %d of %d match", g.prompt(), draftMax,
                            ReferenceRecords.matchingPrefix(r.tokenIds(), g.tokens()), g.tokens().length));
                }
                StatsChecks.assertConsistent(r.stats());
            }
        }
        System.out.printf("draft-ahead on the CPU: drafted %d, accepted %d%n", drafted, accepted);
        assertEquals(List.of(), failures);
        assertTrue(accepted > 0, "the KJV draft should get some tokens accepted");
    }
}
