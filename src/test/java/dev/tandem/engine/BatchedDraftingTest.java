package dev.tandem.engine;

import dev.tandem.runtime.cuda.CudaBackend;
import dev.tandem.runtime.cuda.HostKernels;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.List;
import java.util.function.ToLongFunction;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Issue 18, batched drafting: speculative sequences running together draft together — one draft-model pass per
 * draft position carries the rows of all of them — and each still gets exactly the tokens it gets alone.
 */
class BatchedDraftingTest {
    static final String DRAFT_ID = SpeculativeEngineTest.DRAFT_ID;
    static final String[] PROMPTS = {
            "In the beginning God created", "And the LORD said unto Moses", "Blessed are the", "The LORD is my shepherd",
            "And it came to pass", "Thus saith the LORD", "Now the serpent was", "And God said, Let there be"};
    static final int TOKENS = 32, DRAFT_MAX = 4;

    static GatedBackend cpu;
    /** On the CPU, drafting after each verification, and drafting ahead during it. */
    static Engine cpuEngine, cpuDraftingAhead;

    @BeforeAll
    static void load() {
        cpu = new GatedBackend();
        cpuEngine = open(cpu, false);
        cpuDraftingAhead = open(cpu, true);
    }

    @AfterAll
    static void close() {
        cpu.open();
        cpuEngine.close();
        cpuDraftingAhead.close();
        cpu.close();
    }

    static Engine open(GatedBackend backend, boolean draftAhead) {
        return Tandem.builder().model(EngineTest.MAIN).draft(EngineTest.DRAFT).backend(backend).threads(1)
                .parallel(PROMPTS.length).maxQueue(0).prefixCache(false).draftAhead(draftAhead).build();
    }

    static GenerationRequest request(String prompt, boolean sampled, int tokens) {
        return GenerationRequest.builder().prompt(prompt).maxTokens(tokens).ignoreEndOfGeneration(true)
                .sampling(sampled ? SamplingSettings.defaults(1234).withTemperature(0.9) : SamplingSettings.greedy())
                .draft(DraftSettings.model(DRAFT_ID).withLimits(DRAFT_MAX, 0, 0)).build();
    }

    @ParameterizedTest(name = "sampled: {0}")
    @ValueSource(booleans = {false, true})
    void eightSequencesDraftTogetherAndEachGetsItsOwnTokens(boolean sampled) {
        draftTogetherAndCompare(cpuEngine, cpu, sampled, false, TOKENS);
    }

    /** Draft-ahead for batches: each sequence keeps its own guess; greedy, its tokens are plain decoding's. */
    @ParameterizedTest(name = "sampled: {0}")
    @ValueSource(booleans = {false, true})
    void eightSequencesDraftAheadTogetherAndEachGetsItsOwnTokens(boolean sampled) {
        draftTogetherAndCompare(cpuDraftingAhead, cpu, sampled, true, TOKENS);
        if (!sampled) {
            for (String p : PROMPTS) {
                GenerationRequest plain = GenerationRequest.builder().prompt(p).maxTokens(TOKENS).ignoreEndOfGeneration(true).build();
                assertArrayEquals(cpuEngine.generateBlocking(plain).tokenIds(), cpuDraftingAhead.generateBlocking(request(p, false, TOKENS)).tokenIds(), p);
            }
        }
    }

    /**
     * Adaptive sequences choose their draft lengths for the batch (often none, when the pass is full): whatever they
     * choose, greedy output is plain decoding's, token for token.
     */
    @Test
    void eightAdaptiveGreedySequencesTogetherEqualPlainDecoding() {
        List<Generation> together = new ArrayList<>();
        cpu.hold(0);                    // admitted together: the adaptive choices weigh a batch of eight
        try {
            for (String p : PROMPTS) {
                together.add(cpuEngine.generate(GenerationRequest.builder().prompt(p).maxTokens(TOKENS).ignoreEndOfGeneration(true)
                        .draft(DraftSettings.model(DRAFT_ID).withLimits(DRAFT_MAX, 0, 0).withAdaptive(true)).build()));
            }
        } finally {
            cpu.open();
        }
        List<int[]> adaptive = new ArrayList<>();
        for (Generation g : together) adaptive.add(g.await().tokenIds());     // all done before the plain runs queue
        for (int i = 0; i < PROMPTS.length; i++) {
            GenerationRequest plain = GenerationRequest.builder().prompt(PROMPTS[i]).maxTokens(TOKENS).ignoreEndOfGeneration(true).build();
            assertArrayEquals(cpuEngine.generateBlocking(plain).tokenIds(), adaptive.get(i), PROMPTS[i]);
        }
    }

    /**
     * The same on the CUDA backend's host emulation, greedy. (Sampled, the engine verifies on the device whether a
     * sequence runs alone or with others, with draws keyed by seed and position: DeviceVerifiedBatchTest.)
     */
    @Test
    void onCudaHostEightGreedySequencesDraftTogetherAndEachGetsItsOwnTokens() {
        assumeTrue(HostKernels.isAvailable(), () -> "host-emulation kernels not built: " + HostKernels.unavailableReason());
        try (GatedBackend cuda = new GatedBackend(CudaBackend.onHost());
             Engine engine = open(cuda, true)) {
            assertEquals("cuda-host", engine.backend().name());
            draftTogetherAndCompare(engine, cuda, false, true, 12);     // the emulation is slow: fewer tokens
        }
    }

    static void draftTogetherAndCompare(Engine engine, GatedBackend gate, boolean sampled, boolean draftAhead, int tokens) {
        ToLongFunction<String> passes = model -> engine.forwardPasses().get(model);
        String main = engine.mainModel().id();
        List<int[]> alone = new ArrayList<>();
        long draftBefore = passes.applyAsLong(DRAFT_ID), mainBefore = passes.applyAsLong(main);
        for (String p : PROMPTS) alone.add(engine.generateBlocking(request(p, sampled, tokens)).tokenIds());
        long draftAlone = passes.applyAsLong(DRAFT_ID) - draftBefore, mainAlone = passes.applyAsLong(main) - mainBefore;

        draftBefore = passes.applyAsLong(DRAFT_ID);
        mainBefore = passes.applyAsLong(main);
        List<Generation> together = new ArrayList<>();
        gate.hold(0);                   // no pass runs until all eight are queued, so they are admitted together
        try {
            for (String p : PROMPTS) together.add(engine.generate(request(p, sampled, tokens)));
        } finally {
            gate.open();
        }
        for (int i = 0; i < PROMPTS.length; i++) {
            GenerationOutput out = together.get(i).await();
            assertArrayEquals(alone.get(i), out.tokenIds(), PROMPTS[i]);
            assertTrue(out.stats().draftTokens() > 0, out.stats().toString());
        }
        long draftTogether = passes.applyAsLong(DRAFT_ID) - draftBefore, mainTogether = passes.applyAsLong(main) - mainBefore;

        String counts = "draft passes " + draftTogether + " together, " + draftAlone + " alone; main passes " + mainTogether + " together, "
                + mainAlone + " alone";
        // A step drafts at most draft-max passes for all sequences (drafting ahead, one more for the guesses of the
        // main model's tokens and draft-max for the next drafts) and verifies in one main pass; prefills are one pass
        // per sequence and model in both counts.
        long perStep = draftAhead ? 2L * DRAFT_MAX + 1 : DRAFT_MAX;
        assertTrue(draftTogether <= perStep * mainTogether, counts);
        assertTrue(2 * draftTogether < draftAlone, counts);
        assertTrue(2 * mainTogether < mainAlone, counts);
    }
}
