package dev.tandem.runtime.cuda;

import dev.tandem.engine.DraftSettings;
import dev.tandem.engine.Engine;
import dev.tandem.engine.GenerationRequest;
import dev.tandem.engine.Tandem;
import dev.tandem.model.ModelFile;
import dev.tandem.runtime.Batch;
import dev.tandem.runtime.ForwardResult;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.LoadOptions;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.testing.ForwardingModel;
import dev.tandem.testing.ReferenceRecords;
import dev.tandem.testing.ReferenceRecords.Generation;
import dev.tandem.testing.SharedData;
import dev.tandem.testing.StandInBackend;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The engine's draft-ahead speculative decoding on the CUDA backend (host emulation): the KJV main and draft models
 * each on their own stream. Greedy output equals plain decoding, and the draft's passes of the next draft run on
 * the draft's stream while the main model's verification is still queued on its own. The engine runs the loaded
 * models (or views of them that hold or fail passes) through a {@link StandInBackend}.
 */
class CudaDraftAheadTest {
    static final int TOKENS = 10;
    static HostGpuDriver driver;
    static CudaBackend cuda;
    static ModelFile mainFile, draftFile;
    static CudaModel main, draft;
    static List<Generation> refs;

    @BeforeAll
    static void open() {
        assumeTrue(HostKernels.isAvailable(), () -> "host-emulation kernels not built: " + HostKernels.unavailableReason());
        driver = new HostGpuDriver();
        cuda = new CudaBackend(driver);
        mainFile = ModelFile.open(SharedData.kjv("kjv-main-f32.gguf"));
        draftFile = ModelFile.open(SharedData.kjv("kjv-draft-f32.gguf"));
        main = (CudaModel) cuda.load(mainFile, LoadOptions.defaults());
        draft = (CudaModel) cuda.load(draftFile, LoadOptions.defaults());
        refs = ReferenceRecords.generations("kjv-main-f32.jsonl");
    }

    @AfterAll
    static void close() {
        for (AutoCloseable c : new AutoCloseable[] {draft, main, draftFile, mainFile, cuda}) {
            try {
                if (c != null) c.close();
            } catch (Exception ignored) {
                // best effort
            }
        }
    }

    /** An engine over {@code main} and {@code draft} (already on the device), drafting ahead, one sequence at a time. */
    static Engine engine(LoadedModel main, LoadedModel draft) {
        return Tandem.builder().model(mainFile.path()).draft("draft", draftFile.path()).backend(new StandInBackend("cuda-host", main, draft))
                .parallel(1).draftAhead(true).build();
    }

    /** Greedy, {@code tokens} tokens after {@code prompt}, drafting with {@code draft} (null: plain). */
    static GenerationRequest request(int[] prompt, int tokens, DraftSettings draft) {
        return GenerationRequest.builder().promptTokens(prompt).maxTokens(tokens).ignoreEndOfGeneration(true)
                .draft(draft == null ? DraftSettings.off() : draft).build();
    }

    static DraftSettings drafting(int draftMax, int draftMin, double pMin) {
        return DraftSettings.model("draft").withLimits(draftMax, draftMin, pMin);
    }

    /**
     * Four prompts, draft-max 1..8 (two per prompt): the tokens are plain decoding's, which on this backend are
     * the reference engine's greedy tokens ({@code CudaVersusCpuTest}); for the first prompt plain decoding on
     * this backend is run too.
     */
    @Test
    void greedyDraftAheadEqualsPlainDecoding() {
        List<String> failures = new ArrayList<>();
        try (Engine engine = engine(main, draft)) {
            int[] firstPlain = engine.generateBlocking(request(refs.getFirst().promptTokens(), TOKENS, null)).tokenIds();
            assertArrayEquals(Arrays.copyOf(refs.getFirst().tokens(), TOKENS), firstPlain, "plain decoding on cuda-host");
            for (int draftMax = 1; draftMax <= 8; draftMax++) {
                Generation g = refs.get((draftMax - 1) / 2);
                int[] expected = Arrays.copyOf(g.tokens(), TOKENS);
                int[] got = engine.generateBlocking(request(g.promptTokens(), TOKENS, drafting(draftMax, 0, 0))).tokenIds();
                if (!Arrays.equals(expected, got)) {
                    failures.add(String.format("'%s' draft-max %d: first %d of %d match", g.prompt(), draftMax, ReferenceRecords.matchingPrefix(got, expected), TOKENS));
                }
            }
        }
        assertEquals(List.of(), failures);
    }

    /**
     * With the CLI's default p-min (0.75) and a draft-min, drafts are cut where the draft is unsure and short ones
     * are not verified; the tokens are still plain decoding's (the reference's greedy tokens).
     */
    @Test
    void greedyDraftAheadWithPMinAndDraftMinEqualsPlainDecoding() {
        List<String> failures = new ArrayList<>();
        try (Engine engine = engine(main, draft)) {
            for (DraftSettings policy : List.of(drafting(4, 2, 0.75), drafting(8, 0, 0.5))) {
                Generation g = refs.get(policy.draftMax() == 4 ? 1 : 2);
                int[] expected = Arrays.copyOf(g.tokens(), TOKENS);
                int[] got = engine.generateBlocking(request(g.promptTokens(), TOKENS, policy)).tokenIds();
                if (!Arrays.equals(expected, got)) {
                    failures.add(String.format("'%s' %s: first %d of %d match", g.prompt(), policy, ReferenceRecords.matchingPrefix(got, expected), TOKENS));
                }
            }
        }
        assertEquals(List.of(), failures);
    }

    /**
     * The main model's stream is held (host work enqueued ahead of the first verification) until the engine's
     * scheduler waits for the verification. Every draft pass the scheduler issues in between ran to completion on the
     * draft's stream while the main model's pass event was not reached: the draft's next proposal overlapped the
     * verification, ordered by the streams and not by a host join.
     */
    @Test
    void theDraftRunsAheadOnItsStreamWhileTheVerificationIsQueued() {
        Generation g = refs.getFirst();
        CountDownLatch gate = new CountDownLatch(1);
        AtomicInteger verifyLast = new AtomicInteger(-1);
        List<String> duringGate = Collections.synchronizedList(new ArrayList<>());
        LoadedModel gatedMain = new ForwardingModel(main) {
            @Override
            public CompletionStage<ForwardResult> forwardAsync(Batch batch, KvCache kv) {
                if (batch.logitRows().length == 1 || !verifyLast.compareAndSet(-1, batch.positions()[batch.size() - 1])) {
                    return main.forwardAsync(batch, kv);
                }
                // The scheduler's join opens the gate: all draft work issued before it ran against a held main stream.
                return heldUntilJoined(driver, main, batch, kv, gate, () -> {});
            }
        };
        LoadedModel watchedDraft = new ForwardingModel(draft) {
            @Override
            public CompletionStage<ForwardResult> forwardAsync(Batch batch, KvCache kv) {
                if (verifyLast.get() < 0 || gate.getCount() == 0) return draft.forwardAsync(batch, kv);
                CompletionStage<ForwardResult> pass = draft.forwardAsync(batch, kv);
                pass.toCompletableFuture().join();
                duringGate.add("draft pass at positions " + batch.positions()[0] + ".." + batch.positions()[batch.size() - 1]
                        + ", main verification " + (driver.isDone(main.passEvent()) ? "done" : "pending"));
                return pass;
            }
        };
        int draftMax = 4, tokens = 16;
        int[] got;
        try (Engine engine = engine(gatedMain, watchedDraft)) {
            got = engine.generateBlocking(request(g.promptTokens(), tokens, drafting(draftMax, 0, 0))).tokenIds();
        }
        assertArrayEquals(Arrays.copyOf(g.tokens(), tokens), got);
        System.out.println("while the first verification was held: " + duringGate);
        // The draft ahead runs d_k at the verification's last position, then its draftMax guesses beyond it (16
        // tokens leave room for a full draft-ahead after the first step's 1 + 4 + 1 tokens).
        assertEquals(draftMax + 1, duringGate.size(), duringGate.toString());
        assertTrue(duringGate.getFirst().startsWith("draft pass at positions " + verifyLast.get() + ".."), duringGate.toString());
        for (String s : duringGate) assertTrue(s.endsWith("pending"), duringGate.toString());
    }

    /**
     * A draft pass that fails while the main model's verification is queued (its stream held): the failure reaches
     * the caller only after the verification has finished, so the K/V caches are not freed under a running pass.
     */
    @Test
    void aDraftFailureWaitsForTheVerificationInFlight() {
        Generation g = refs.getFirst();
        CountDownLatch gate = new CountDownLatch(1);
        AtomicInteger verifications = new AtomicInteger();
        java.util.concurrent.atomic.AtomicBoolean finished = new java.util.concurrent.atomic.AtomicBoolean();
        LoadedModel gatedMain = new ForwardingModel(main) {
            @Override
            public CompletionStage<ForwardResult> forwardAsync(Batch batch, KvCache kv) {
                if (batch.logitRows().length == 1 || verifications.getAndIncrement() > 0) return main.forwardAsync(batch, kv);
                return heldUntilJoined(driver, main, batch, kv, gate, () -> finished.set(true));
            }
        };
        LoadedModel failingDraft = new ForwardingModel(draft) {
            @Override
            public CompletionStage<ForwardResult> forwardAsync(Batch batch, KvCache kv) {
                if (verifications.get() > 0) throw new IllegalStateException("draft pass failed");
                return draft.forwardAsync(batch, kv);
            }
        };
        try (Engine engine = engine(gatedMain, failingDraft)) {
            var e = org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class, () ->
                    engine.generateBlocking(request(g.promptTokens(), 16, drafting(4, 0, 0))));
            assertEquals("draft pass failed", e.getMessage());
            assertTrue(finished.get(), "the failure came back while the verification was still queued");
        } finally {
            gate.countDown();
        }
        // The models are still usable: the next generation is plain decoding's.
        try (Engine engine = engine(main, draft)) {
            int[] got = engine.generateBlocking(request(g.promptTokens(), TOKENS, drafting(4, 0, 0))).tokenIds();
            assertArrayEquals(Arrays.copyOf(g.tokens(), TOKENS), got);
        }
    }

    /**
     * {@code main}'s pass behind {@code gate}: host work enqueued ahead of it on its stream waits for the gate, which
     * the returned stage opens when the caller (the engine's scheduler) joins it; {@code done} runs
     * when the pass has completed.
     */
    static CompletionStage<ForwardResult> heldUntilJoined(HostGpuDriver driver, CudaModel main, Batch batch, KvCache kv, CountDownLatch gate, Runnable done) {
        driver.enqueue(main.stream(), () -> await(gate));
        CompletionStage<ForwardResult> pass = main.forwardAsync(batch, kv);
        CompletableFuture<ForwardResult> joined = new CompletableFuture<>() {
            @Override
            public ForwardResult join() {
                gate.countDown();
                return super.join();
            }
        };
        pass.whenComplete((r, e) -> {
            done.run();
            if (e != null) joined.completeExceptionally(e);
            else joined.complete(r);
        });
        return joined;
    }

    private static void await(CountDownLatch gate) {
        try {
            // Bounded, so that a scheduler that joins the verification first fails this test instead of hanging it.
            gate.await(60, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
