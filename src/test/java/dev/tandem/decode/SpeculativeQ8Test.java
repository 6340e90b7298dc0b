package dev.tandem.decode;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tandem.testing.ReferenceRecords;
import dev.tandem.testing.ReferenceRecords.Generation;
import dev.tandem.testing.SharedData;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Q8_0 KJV pair on the 24 prompts of the reference engine's speculative runs, greedy, draft-max 4, draft-min
 * 0, p-min 0, 128 tokens: output equals our plain decode on every prompt (the reference engine's differs on
 * one), and acceptance is within 2 points of its 60.2 % or above.
 */
class SpeculativeQ8Test {
    static KjvPair pair;

    @BeforeAll
    static void load() { pair = KjvPair.q8(); }

    @AfterAll
    static void close() { pair.close(); }

    @Test
    void greedyDraftMax4MatchesPlainOnEveryPromptWithTheReferenceAcceptance() {
        Map<String, int[]> promptTokens = ReferenceRecords.generations("kjv-main-q8_0.jsonl").stream()
                .collect(Collectors.toMap(Generation::prompt, Generation::promptTokens, (a, b) -> a));
        List<JsonNode> refs = ReferenceRecords.jsonl(SharedData.reference("speculative/kjv-q8_0-max4-pmin0.jsonl"));
        PlainGenerator plain = new PlainGenerator(pair.main, SamplerSettings.greedy());
        SpeculativeGenerator spec = new SpeculativeGenerator(pair.main, new ModelDrafter(pair.draft), new DraftPolicy.Fixed(4, 0, 0f), SamplerSettings.greedy());
        long drafted = 0, accepted = 0, refDrafted = 0, refAccepted = 0;
        List<String> differ = new ArrayList<>();
        for (JsonNode ref : refs) {
            String prompt = ref.get("prompt").asText();
            int[] tokens = promptTokens.get(prompt);
            GenerationLimits limits = GenerationLimits.of(ref.get("n_predict").asInt());
            int[] expected = plain.generate(tokens, limits).tokens();
            GenerationResult r = spec.generate(tokens, limits);
            StatsChecks.assertConsistent(r.stats());
            if (!Arrays.equals(expected, r.tokens())) differ.add(prompt + " from token " + ReferenceRecords.matchingPrefix(expected, r.tokens()));
            long d = r.stats().draftedTokens() - r.stats().ignoredTokens();
            drafted += d;
            accepted += r.stats().acceptedTokens();
            refDrafted += ref.get("draft_n").asLong();
            refAccepted += ref.get("draft_n_accepted").asLong();
            System.out.printf("  %-55s drafted %3d accepted %3d (reference %3d / %3d)%n", "'" + prompt + "'", d, r.stats().acceptedTokens(),
                    ref.get("draft_n").asLong(), ref.get("draft_n_accepted").asLong());
        }
        double rate = 100.0 * accepted / drafted, refRate = 100.0 * refAccepted / refDrafted;
        System.out.printf("Q8_0 draft-max 4 p-min 0: identical to plain %d/%d; acceptance %.1f %% (%d/%d), reference %.1f %% (%d/%d)%n",
                refs.size() - differ.size(), refs.size(), rate, accepted, drafted, refRate, refAccepted, refDrafted);
        assertEquals(List.of(), differ);
        assertTrue(rate >= refRate - 2, "acceptance " + rate + " % is more than 2 points below the reference's " + refRate + " %");
    }
}
