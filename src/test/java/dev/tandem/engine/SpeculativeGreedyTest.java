package dev.tandem.engine;

import dev.tandem.testing.ReferenceRecords;
import dev.tandem.testing.ReferenceRecords.Generation;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Greedy speculative decoding in the engine is lossless: on the KJV F32 pair its output equals the main model alone
 * (the reference engine's greedy tokens, which {@code CpuGreedyReferenceTest} shows the plain CPU decode reproduces)
 * for every reference prompt, whatever the drafter and the draft length.
 */
class SpeculativeGreedyTest {
    static Engine engine;
    static List<Generation> refs;

    @BeforeAll
    static void load() {
        engine = KjvEngines.f32(false);
        refs = ReferenceRecords.generations("kjv-main-f32.jsonl");
    }

    @AfterAll
    static void close() { engine.close(); }

    @Test
    void plainDecodingReproducesTheReference() {
        for (Generation g : refs.subList(0, 4)) {
            GenerationOutput r = engine.generateBlocking(KjvEngines.request(g.promptTokens(), g.tokens().length).build());
            assertArrayEquals(g.tokens(), r.tokenIds(), g.prompt());
            assertEquals(FinishReason.LENGTH, r.finishReason());
        }
    }

    /**
     * The first 16 reference prompts, prompt i with draft-max i+1 (so 1..16 are all covered), with the default
     * fixed policy or the adaptive one, and with n-gram lookup.
     */
    @Test
    void speculativeEqualsPlainForEveryDrafterAndLength() {
        List<String> failures = new ArrayList<>();
        int runs = 0;
        long drafted = 0, accepted = 0;
        DraftSettings model = KjvEngines.draft(engine);
        for (int i = 0; i < 16; i++) {
            Generation g = refs.get(i);
            List<DraftSettings> drafts = List.of(
                    model.withLimits(i + 1, 0, 0),
                    i % 2 == 0 ? model : model.withLimits(16, 0, 0).withAdaptive(true),
                    DraftSettings.ngram().withLimits(1 + (i + 5) % 16, 0, 0));
            for (DraftSettings d : drafts) {
                GenerationOutput r = engine.generateBlocking(KjvEngines.request(g.promptTokens(), g.tokens().length).draft(d).build());
                runs++;
                drafted += r.stats().draftTokens();
                accepted += r.stats().acceptedDraftTokens();
                if (!Arrays.equals(g.tokens(), r.tokenIds())) {
                    failures.add(String.format("'%s' %s: first %d of %d match", g.prompt(), d, ReferenceRecords.matchingPrefix(r.tokenIds(), g.tokens()), g.tokens().length));
                }
                StatsChecks.assertConsistent(r.stats());
            }
        }
        System.out.printf("greedy speculative == plain: %d/%d runs; drafted %d, accepted %d%n", runs - failures.size(), runs, drafted, accepted);
        assertEquals(List.of(), failures);
    }
}
