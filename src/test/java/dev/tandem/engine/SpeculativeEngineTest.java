package dev.tandem.engine;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Speculative decoding inside the engine on the bundled KJV Q8_0 pair: the draft model and n-gram lookup only
 * change how many passes a request takes, never its greedy tokens, alone or sharing passes with others.
 */
class SpeculativeEngineTest {
    static final String DRAFT_ID = "kjv-draft-q8_0";
    static final String[] PROMPTS = EngineTest.PROMPTS;

    static Engine engine;

    @BeforeAll
    static void load() {
        engine = Tandem.builder().model(EngineTest.MAIN).draft(EngineTest.DRAFT).threads(1).parallel(4).maxQueue(8).build();
    }

    @AfterAll
    static void close() {
        engine.close();
    }

    static GenerationRequest request(String prompt, int maxTokens, DraftSettings draft) {
        return GenerationRequest.builder().prompt(prompt).maxTokens(maxTokens).draft(draft).build();
    }

    /** Draft up to 4 tokens every step (no p-min), so that speculation surely runs. */
    static DraftSettings drafting(DraftSettings d) {
        return d.withLimits(4, 0, 0);
    }

    static void assertCountsAddUp(GenerationStats s) {
        assertEquals(s.draftTokens(), s.acceptedDraftTokens() + s.rejectedDraftTokens() + s.ignoredDraftTokens(), s.toString());
    }

    @Test
    void greedyWithTheDraftModelEqualsPlainGreedyAndCountsItsDrafts() {
        GenerationOutput plain = engine.generateBlocking(request(PROMPTS[0], 48, DraftSettings.off()));
        GenerationOutput spec = engine.generateBlocking(request(PROMPTS[0], 48, drafting(DraftSettings.model(DRAFT_ID))));
        assertArrayEquals(plain.tokenIds(), spec.tokenIds());
        assertEquals(plain.text(), spec.text());
        assertEquals(plain.finishReason(), spec.finishReason());
        GenerationStats s = spec.stats();
        assertEquals(DRAFT_ID, s.draftModel());
        assertTrue(s.draftTokens() > 0 && s.acceptedDraftTokens() > 0, s.toString());
        assertCountsAddUp(s);
        assertNull(plain.stats().draftModel());
        assertEquals(0, plain.stats().draftTokens());
    }

    /**
     * The stream marks as {@code fromDraft} exactly the tokens counted as accepted from the draft, and the stats'
     * histogram of accepted lengths sums to the verification passes and to the accepted tokens.
     */
    @Test
    void theStreamMarksExactlyTheAcceptedDraftTokens() throws Exception {
        for (DraftSettings d : List.of(DraftSettings.off(), drafting(DraftSettings.model(DRAFT_ID)), drafting(DraftSettings.ngram()))) {
            Generation g = engine.generate(request(PROMPTS[0], 48, d));
            EngineTest.Collector c = new EngineTest.Collector();
            g.subscribe(c);
            assertTrue(c.done.await(60, TimeUnit.SECONDS), "hang guard");
            GenerationStats s = g.await().stats();
            int marked = 0;
            for (GenerationEvent e : c.events) if (e instanceof GenerationEvent.Chunk chunk && chunk.fromDraft()) marked += chunk.tokenIds().length;
            assertEquals(s.acceptedDraftTokens(), marked, d.toString());
            if (d.mode() == DraftSettings.Mode.MODEL) assertTrue(marked > 0, s.toString());
            int[] histogram = s.acceptedLengthHistogram();
            long passes = 0, accepted = 0;
            for (int i = 0; i < histogram.length; i++) {
                passes += histogram[i];
                accepted += (long) i * histogram[i];
            }
            assertEquals(s.verificationPasses(), passes, d.toString());
            assertEquals(s.acceptedDraftTokens(), accepted, d.toString());
            assertTrue(s.promptMillis() > 0 && s.generationMillis() > 0, s.toString());
        }
    }

    @Test
    void everyDraftLengthPolicyKeepsTheGreedyOutput() {
        int[] plain = engine.generateBlocking(request(PROMPTS[1], 32, DraftSettings.off())).tokenIds();
        List<DraftSettings> settings = List.of(
                DraftSettings.model(DRAFT_ID).withLimits(1, 0, 0),
                DraftSettings.model(DRAFT_ID).withLimits(16, 0, 0),
                DraftSettings.model(DRAFT_ID),                                  // draft-max 16, p-min 0.75
                DraftSettings.model(DRAFT_ID).withLimits(8, 3, 0.5),            // short drafts are discarded
                DraftSettings.model(DRAFT_ID).withAdaptive(true),
                DraftSettings.ngram().withLimits(4, 0, 0));
        for (DraftSettings d : settings) {
            GenerationOutput out = engine.generateBlocking(request(PROMPTS[1], 32, d));
            assertArrayEquals(plain, out.tokenIds(), d.toString());
            assertCountsAddUp(out.stats());
        }
    }

    @Test
    void ngramLookupEqualsPlainGreedyAndIsNamedNgram() {
        // A repetitive prompt gives the lookup something to find.
        String prompt = "And God said, Let there be light: and there was light. And God said, Let there be";
        GenerationOutput plain = engine.generateBlocking(request(prompt, 32, DraftSettings.off()));
        GenerationOutput spec = engine.generateBlocking(request(prompt, 32, drafting(DraftSettings.ngram())));
        assertArrayEquals(plain.tokenIds(), spec.tokenIds());
        assertEquals("ngram", spec.stats().draftModel());
        assertTrue(spec.stats().draftTokens() > 0, spec.stats().toString());
        assertCountsAddUp(spec.stats());
    }

    @Test
    void concurrentSpeculativeRequestsShareMainPassesAndEachEqualsItselfAlone() throws Exception {
        List<GenerationRequest> requests = List.of(
                request(PROMPTS[0], 40, drafting(DraftSettings.model(DRAFT_ID))),
                request(PROMPTS[1], 40, drafting(DraftSettings.model(DRAFT_ID))),
                request(PROMPTS[2], 40, drafting(DraftSettings.ngram())),
                request(PROMPTS[3], 40, DraftSettings.off()));
        List<GenerationOutput> alone = new ArrayList<>();
        long passesAlone = 0;
        for (GenerationRequest r : requests) {
            long before = engine.stats().forwardPasses();
            alone.add(engine.generateBlocking(r));
            passesAlone += engine.stats().forwardPasses() - before;
        }
        long before = engine.stats().forwardPasses();
        List<Generation> together = new ArrayList<>();
        for (GenerationRequest r : requests) together.add(engine.generate(r));
        for (int i = 0; i < requests.size(); i++) {
            GenerationOutput out = together.get(i).result().get(60, TimeUnit.SECONDS);
            assertArrayEquals(alone.get(i).tokenIds(), out.tokenIds(), PROMPTS[i]);
            assertEquals(alone.get(i).text(), out.text());
            // Same tokens, same acceptance: the drafts and verdicts do not depend on the batch either.
            assertEquals(alone.get(i).stats().acceptedDraftTokens(), out.stats().acceptedDraftTokens(), PROMPTS[i]);
        }
        long passesTogether = engine.stats().forwardPasses() - before;
        assertTrue(passesTogether < passesAlone, "verification rows shared passes: " + passesTogether + " together, " + passesAlone + " alone");
        assertEquals(0, engine.stats().kvBlocksInUse());
    }

    @Test
    void sampledSpeculativeOutputDependsOnlyOnTheSeedNotOnTheLoad() throws Exception {
        GenerationRequest sampled = GenerationRequest.builder().prompt(PROMPTS[0]).maxTokens(24)
                .sampling(SamplingSettings.defaults(7)).draft(drafting(DraftSettings.model(DRAFT_ID))).build();
        GenerationOutput alone = engine.generateBlocking(sampled);
        Generation other = engine.generate(request(PROMPTS[2], 24, drafting(DraftSettings.model(DRAFT_ID))));
        GenerationOutput loaded = engine.generateBlocking(sampled);
        other.await();
        assertArrayEquals(alone.tokenIds(), loaded.tokenIds());
        assertTrue(alone.stats().draftTokens() > 0);
    }

    @Test
    void cancellingASpeculativeGenerationFreesTheBlocksOfBothModels() throws Exception {
        GenerationOutput out = EngineTest.cancelAfterFirstEvent(engine.generate(GenerationRequest.builder().prompt(PROMPTS[3])
                .ignoreEndOfGeneration(true).draft(drafting(DraftSettings.model(DRAFT_ID))).build()));
        assertEquals(DRAFT_ID, out.stats().draftModel());
        assertEquals(0, engine.stats().kvBlocksInUse());
    }

    @Test
    void aStopStringCutsASpeculativeRunWhereThePlainRunStops() {
        GenerationOutput full = engine.generateBlocking(request(PROMPTS[1], 32, DraftSettings.off()));
        String stop = full.text().substring(full.text().length() / 2, full.text().length() / 2 + 3);
        GenerationRequest.Builder b = GenerationRequest.builder().prompt(PROMPTS[1]).maxTokens(32).stop(stop);
        GenerationOutput plain = engine.generateBlocking(b.build());
        GenerationOutput spec = engine.generateBlocking(b.draft(drafting(DraftSettings.model(DRAFT_ID))).build());
        assertEquals(plain.text(), spec.text());
        assertEquals(FinishReason.STOP, spec.finishReason());
        assertCountsAddUp(spec.stats());
    }
}
