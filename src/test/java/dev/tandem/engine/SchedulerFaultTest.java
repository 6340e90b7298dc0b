package dev.tandem.engine;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.time.Duration;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Issue 14: the scheduler survives whatever one sequence's work throws. A fault injected into one sequence's
 * prefill ({@link FaultInjectingBackend}) fails that sequence only; a sequence running beside it finishes, every
 * K/V block is freed, and a greedy request afterwards gives what it gave before. An error that leaves the engine
 * unusable is reported by {@link Engine#failure()} and refuses new requests instead of letting them hang.
 * Timeouts only bound a hang.
 */
class SchedulerFaultTest {
    static final Path MAIN = Path.of("test-models/kjv-main-q8_0.gguf");
    static final Duration HANG_GUARD = Duration.ofSeconds(60);

    static FaultInjectingBackend backend;
    static Engine engine;
    static String before;

    @BeforeAll
    static void start() {
        backend = new FaultInjectingBackend();
        engine = Tandem.builder().model(MAIN).backend(backend).threads(1).parallel(2).maxQueue(8).build();
        before = engine.generateBlocking(greedy("In the beginning God", 24)).text();
    }

    @AfterAll
    static void stop() {
        if (engine != null) engine.close();
        if (backend != null) backend.close();
    }

    static GenerationRequest greedy(String prompt, int maxTokens) {
        return GenerationRequest.builder().prompt(prompt).maxTokens(maxTokens).build();
    }

    /** The engine's stats once its bookkeeping has caught up with the ended sequences (the scheduler counts after it completes them). */
    static EngineStats idle(Engine e) throws InterruptedException {
        EngineStats s = e.stats();
        while (s.active() + s.waiting() + s.kvBlocksInUse() > 0) {    // bounded by the test's hang guard
            Thread.sleep(10);
            s = e.stats();
        }
        return s;
    }

    static Supplier<Throwable> fault(String kind) {
        return switch (kind) {
            case "OutOfMemoryError" -> () -> new OutOfMemoryError("injected");
            case "StackOverflowError" -> () -> new StackOverflowError("injected");
            case "AssertionError" -> () -> new AssertionError("injected");
            case "NullPointerException" -> () -> new NullPointerException("injected");
            case "ExceptionInInitializerError" -> () -> new ExceptionInInitializerError("injected");
            default -> throw new IllegalArgumentException(kind);
        };
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"OutOfMemoryError", "StackOverflowError", "AssertionError", "NullPointerException", "ExceptionInInitializerError"})
    void aFaultInOneSequenceFailsOnlyThatSequence(String kind) {
        assertTimeoutPreemptively(HANG_GUARD, () -> {
            Generation bystander = engine.generate(GenerationRequest.builder().prompt("And the LORD said unto Moses")
                    .maxTokens(200).ignoreEndOfGeneration(true).build());
            backend.arm(fault(kind));
            try {
                Generation faulty = engine.generate(GenerationRequest.builder().promptTokens(1, FaultInjectingBackend.TRIGGER, 5).maxTokens(8).build());
                RuntimeException e = assertThrows(RuntimeException.class, faulty::await);
                Throwable cause = e.getCause() != null ? e.getCause() : e;
                assertEquals(kind, cause.getClass().getSimpleName(), "the sequence fails with its own fault");
            } finally {
                backend.arm(null);
            }
            GenerationOutput other = bystander.await();
            assertEquals(FinishReason.LENGTH, other.finishReason(), "the sequence beside it finishes");
            assertEquals(200, other.tokenIds().length);
            assertTrue(engine.failure().isEmpty(), "a fault of one sequence leaves the engine usable");
            assertEquals(before, engine.generateBlocking(greedy("In the beginning God", 24)).text(), "greedy output as before");
            EngineStats s = idle(engine);
            assertEquals(0, s.active());
            assertEquals(0, s.waiting());
            assertEquals(0, s.kvBlocksInUse(), "every K/V block is free");
        });
    }

    @Test
    void anErrorThatLeavesTheEngineUnusableIsReportedAndRefusesNewRequests() {
        try (FaultInjectingBackend own = new FaultInjectingBackend();
             Engine broken = Tandem.builder().model(MAIN).backend(own).threads(1).parallel(2).maxQueue(8).build()) {
            assertTimeoutPreemptively(HANG_GUARD, () -> {
                assertTrue(broken.failure().isEmpty());
                own.arm(() -> new InternalError("injected: the JVM is in trouble"));
                Generation faulty = broken.generate(GenerationRequest.builder().promptTokens(1, FaultInjectingBackend.TRIGGER, 5).maxTokens(8).build());
                assertThrows(RuntimeException.class, faulty::await);
                assertTrue(broken.failure().isPresent(), "the engine says it is unusable");
                assertTrue(broken.failure().get().contains("InternalError"), broken.failure().get());
                EngineFailedException refused = assertThrows(EngineFailedException.class, () -> broken.generate(greedy("And", 4)));
                assertTrue(refused.getMessage().contains("InternalError"), refused.getMessage());
                assertEquals(0, idle(broken).kvBlocksInUse(), "the failed sequence's blocks are freed all the same");
            });
        }
    }
}
