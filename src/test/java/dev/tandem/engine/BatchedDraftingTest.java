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
    static Engine cpuEngine;

    @BeforeAll
    static void load() {
        cpu = new GatedBackend();
        cpuEngine = open(cpu);
    }

    @AfterAll
    static void close() {
        cpu.open();
        cpuEngine.close();
        cpu.close();
    }

    static Engine open(GatedBackend backend) {
        return Tandem.builder().model(EngineTest.MAIN).draft(EngineTest.DRAFT).backend(backend).threads(1)
                .parallel(PROMPTS.length).maxQueue(0).prefixCache(false).build();
    }

    static GenerationRequest request(String prompt, boolean sampled) {
        return GenerationRequest.builder().prompt(prompt).maxTokens(TOKENS).ignoreEndOfGeneration(true)
                .sampling(sampled ? SamplingSettings.defaults(1234).withTemperature(0.9) : SamplingSettings.greedy())
                .draft(DraftSettings.model(DRAFT_ID).withLimits(DRAFT_MAX, 0, 0)).build();
    }

    @ParameterizedTest(name = "sampled: {0}")
    @ValueSource(booleans = {false, true})
    void eightSequencesDraftTogetherAndEachGetsItsOwnTokens(boolean sampled) {
        draftTogetherAndCompare(cpuEngine, cpu, sampled);
    }

    /**
     * The same on the CUDA backend's host emulation, greedy. (Sampled, a lone sequence verifies on the device with
     * draws keyed by seed and position, unlike sequences verified together on the host, so their tokens differ
     * while their distribution is the same: SpeculativeSamplingDistributionTest's business.)
     */
    @Test
    void onCudaHostEightGreedySequencesDraftTogetherAndEachGetsItsOwnTokens() {
        assumeTrue(HostKernels.isAvailable(), () -> "host-emulation kernels not built: " + HostKernels.unavailableReason());
        try (GatedBackend cuda = new GatedBackend(CudaBackend.onHost());
             Engine engine = open(cuda)) {
            assertEquals("cuda-host", engine.backend().name());
            draftTogetherAndCompare(engine, cuda, false);
        }
    }

    static void draftTogetherAndCompare(Engine engine, GatedBackend gate, boolean sampled) {
        ToLongFunction<String> passes = model -> engine.forwardPasses().get(model);
        String main = engine.mainModel().id();
        List<int[]> alone = new ArrayList<>();
        long draftBefore = passes.applyAsLong(DRAFT_ID), mainBefore = passes.applyAsLong(main);
        for (String p : PROMPTS) alone.add(engine.generateBlocking(request(p, sampled)).tokenIds());
        long draftAlone = passes.applyAsLong(DRAFT_ID) - draftBefore, mainAlone = passes.applyAsLong(main) - mainBefore;

        draftBefore = passes.applyAsLong(DRAFT_ID);
        mainBefore = passes.applyAsLong(main);
        List<Generation> together = new ArrayList<>();
        gate.hold(0);                   // no pass runs until all eight are queued, so they are admitted together
        try {
            for (String p : PROMPTS) together.add(engine.generate(request(p, sampled)));
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
        // A step drafts at most draft-max passes for all sequences and verifies in one main pass; prefills are one
        // pass per sequence and model in both counts.
        assertTrue(draftTogether <= (long) DRAFT_MAX * mainTogether, counts);
        assertTrue(2 * draftTogether < draftAlone, counts);
        assertTrue(2 * mainTogether < mainAlone, counts);
    }
}
