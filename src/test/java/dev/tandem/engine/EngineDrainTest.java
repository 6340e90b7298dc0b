package dev.tandem.engine;

import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Graceful shutdown on the bundled KJV pair: {@link Engine#close()} and {@link Engine#drain} stop taking requests
 * at once, let the generations already taken (running or queued) finish as they would have, and end what is left
 * at the drain timeout with {@link FinishReason#SHUTDOWN}, freeing every K/V block.
 */
class EngineDrainTest {
    static final Path MAIN = EngineTest.MAIN, DRAFT = EngineTest.DRAFT;
    static final String[] PROMPTS = EngineTest.PROMPTS;

    /** Two batch slots, so that of four requests two wait in the queue. */
    static Engine open(Duration drainTimeout) {
        return Tandem.builder().model(MAIN).draft(DRAFT).threads(1).parallel(2).maxQueue(8).drainTimeout(drainTimeout).build();
    }

    static GenerationRequest request(int i, int maxTokens) {
        GenerationRequest.Builder b = GenerationRequest.builder().prompt(PROMPTS[i % PROMPTS.length]).maxTokens(maxTokens)
                .sampling(SamplingSettings.greedy()).ignoreEndOfGeneration(true);
        if (i % 2 == 1) b.draft(DraftSettings.model(null).withLimits(3, 0, 0));
        return b.build();
    }

    @Test
    void closeLetsRunningAndQueuedGenerationsFinishAsTheyWouldHave() {
        List<GenerationOutput> alone = new ArrayList<>();
        try (Engine reference = open(Duration.ofSeconds(30))) {
            for (int i = 0; i < 4; i++) alone.add(reference.generateBlocking(request(i, 24 + 8 * i)));
        }
        Engine engine = open(Duration.ofMinutes(5));
        List<Generation> taken = new ArrayList<>();
        for (int i = 0; i < 4; i++) taken.add(engine.generate(request(i, 24 + 8 * i)));
        engine.close();
        for (int i = 0; i < 4; i++) {
            assertTrue(taken.get(i).result().isDone(), "close returns after the generations it let finish");
            GenerationOutput out = taken.get(i).await();
            assertEquals(FinishReason.LENGTH, out.finishReason(), "request " + i);
            assertArrayEquals(alone.get(i).tokenIds(), out.tokenIds(), "request " + i + " gives what it gives alone");
        }
    }

    @Test
    void theDrainTimeoutEndsWhatIsLeftWithShutdownAndFreesItsBlocks() throws Exception {
        Engine engine = open(Duration.ofMinutes(5));
        try {
            List<Generation> taken = new ArrayList<>();
            for (int i = 0; i < 4; i++) taken.add(engine.generate(request(i, 0)));    // 0: up to the full context
            CompletableFuture<Void> longDrain = CompletableFuture.runAsync(() -> engine.drain(Duration.ofMinutes(5)));
            while (!engine.isDraining()) Thread.onSpinWait();
            EngineDrainingException refused = assertThrows(EngineDrainingException.class, () -> engine.generate(request(0, 8)));
            assertTrue(refused.getMessage().contains("shutting down"), refused.getMessage());

            engine.drain(Duration.ZERO);        // a second call brings the deadline forward
            longDrain.get();                    // and the first call returns with it
            int[] fullContext = engine.promptTokens(request(0, 0));
            for (int i = 0; i < 4; i++) {
                GenerationOutput out = taken.get(i).result().getNow(null);
                assertNotNull(out, "request " + i + " has ended");
                assertEquals(FinishReason.SHUTDOWN, out.finishReason(), "request " + i);
                assertTrue(out.tokenIds().length < engine.contextLength() - fullContext.length, "request " + i + " was cut short");
            }
            EngineStats stats = engine.stats();
            assertEquals(0, stats.kvBlocksInUse(), "no K/V block is held afterwards");
            assertEquals(0, stats.active() + stats.waiting());
            assertEquals(4, stats.cancelled(), "a generation the drain ended counts as cancelled");
            assertEquals("shutdown", FinishReason.SHUTDOWN.apiName());
        } finally {
            engine.close();
        }
    }

    @Test
    void warmUpRunsOneShortGenerationPlainAndOneWithEachDraftModel() {
        try (Engine engine = open(Duration.ofSeconds(30))) {
            engine.warmUp();
            EngineStats stats = engine.stats();
            assertEquals(2, stats.completed());
            assertEquals(4, stats.generatedTokens());
            assertEquals(0, stats.kvBlocksInUse());
        }
        try (Engine tiny = Tandem.builder().model(MAIN).threads(1).contextLength(3).build()) {
            tiny.warmUp();
            assertEquals(1, tiny.stats().completed(), "a warm-up fits a context of 3 positions");
            assertEquals(2, tiny.stats().generatedTokens());
        }
    }
}
