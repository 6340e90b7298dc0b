package dev.tandem.decode;

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
 * Greedy speculative decoding is lossless: on the KJV F32 pair its output equals the main model alone (the
 * reference engine's greedy tokens, which {@code CpuGreedyReferenceTest} shows the plain CPU decode reproduces)
 * for every reference prompt, whatever the drafter and the draft length.
 */
class SpeculativeGreedyTest {
    static KjvPair pair;
    static List<Generation> refs;

    @BeforeAll
    static void load() {
        pair = KjvPair.f32();
        refs = ReferenceRecords.generations("kjv-main-f32.jsonl");
    }

    @AfterAll
    static void close() { pair.close(); }

    @Test
    void plainGeneratorReproducesTheReference() {
        PlainGenerator plain = new PlainGenerator(pair.main, SamplerSettings.greedy());
        for (Generation g : refs.subList(0, 4)) {
            GenerationResult r = plain.generate(g.promptTokens(), GenerationLimits.of(g.tokens().length));
            assertArrayEquals(g.tokens(), r.tokens(), g.prompt());
            assertEquals(StopReason.MAX_TOKENS, r.stopReason());
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
        for (int i = 0; i < 16; i++) {
            Generation g = refs.get(i);
            List<Generator> generators = List.of(
                    new SpeculativeGenerator(pair.main, new ModelDrafter(pair.draft), DraftPolicy.Fixed.always(i + 1), SamplerSettings.greedy()),
                    new SpeculativeGenerator(pair.main, new ModelDrafter(pair.draft), i % 2 == 0 ? DraftPolicy.Fixed.defaults() : DraftPolicy.Adaptive.defaults(), SamplerSettings.greedy()),
                    new SpeculativeGenerator(pair.main, new NgramDrafter(), DraftPolicy.Fixed.always(1 + (i + 5) % 16), SamplerSettings.greedy()));
            for (Generator gen : generators) {
                GenerationResult r = gen.generate(g.promptTokens(), GenerationLimits.of(g.tokens().length));
                runs++;
                drafted += r.stats().draftedTokens();
                accepted += r.stats().acceptedTokens();
                if (!Arrays.equals(g.tokens(), r.tokens())) {
                    failures.add(String.format("'%s' run %d: first %d of %d match", g.prompt(), runs, ReferenceRecords.matchingPrefix(r.tokens(), g.tokens()), g.tokens().length));
                }
                StatsChecks.assertConsistent(r.stats());
            }
        }
        System.out.printf("greedy speculative == plain: %d/%d runs; drafted %d, accepted %d%n", runs - failures.size(), runs, drafted, accepted);
        assertEquals(List.of(), failures);
    }
}
