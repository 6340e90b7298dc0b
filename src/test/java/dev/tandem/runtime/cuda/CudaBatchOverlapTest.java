package dev.tandem.runtime.cuda;

import dev.tandem.engine.DraftSettings;
import dev.tandem.engine.Engine;
import dev.tandem.engine.Generation;
import dev.tandem.engine.GenerationRequest;
import dev.tandem.engine.Tandem;
import dev.tandem.model.ModelFile;
import dev.tandem.runtime.Backend;
import dev.tandem.runtime.Batch;
import dev.tandem.runtime.ForwardResult;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.LoadOptions;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.testing.ForwardingModel;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Issue 18, overlap for batches: in the engine on the CUDA backend (host emulation), while the main model verifies a
 * step for several sequences on its stream, the draft model drafts their next step on its own. The first batched
 * verification is held on the main model's stream (host work enqueued ahead of it) until the scheduler joins it;
 * every draft pass issued in between ran to completion while the verification's event was still pending — ordered
 * by the streams, not by a host join.
 */
class CudaBatchOverlapTest {
    static final Path MAIN = Path.of("test-models/kjv-main-q8_0.gguf"), DRAFT = Path.of("test-models/kjv-draft-q8_0.gguf");
    static final String[] PROMPTS = {"In the beginning God created", "And the LORD said unto Moses", "Blessed are the", "The LORD is my shepherd"};
    static final int TOKENS = 12;

    @Test
    void theNextStepsDraftsRunOnTheDraftStreamWhileTheBatchedVerificationIsQueued() {
        assumeTrue(HostKernels.isAvailable(), () -> "host-emulation kernels not built: " + HostKernels.unavailableReason());
        HostGpuDriver driver = new HostGpuDriver();
        CountDownLatch gate = new CountDownLatch(1);
        AtomicBoolean holding = new AtomicBoolean();
        List<String> duringGate = Collections.synchronizedList(new ArrayList<>());
        List<CudaModel> loaded = new ArrayList<>();
        CudaModel[] main = new CudaModel[1];
        Backend traced = new Backend() {
            final CudaBackend cuda = new CudaBackend(driver, new HostGemm(driver), null);

            @Override public String name() { return cuda.name(); }

            @Override
            public LoadedModel load(ModelFile file, LoadOptions options) {
                CudaModel m = (CudaModel) cuda.load(file, options);
                loaded.add(m);
                if (file.path().endsWith(MAIN.getFileName())) {
                    main[0] = m;
                    return new ForwardingModel(m) {
                        @Override
                        public CompletionStage<ForwardResult> forwardAsync(Batch batch, KvCache kv) {
                            if (!verifiesDraftsOfSeveral(batch) || !holding.compareAndSet(false, true)) return m.forwardAsync(batch, kv);
                            return CudaDraftAheadTest.heldUntilJoined(driver, m, batch, kv, gate, () -> {});
                        }
                    };
                }
                return new ForwardingModel(m) {
                    @Override
                    public CompletionStage<ForwardResult> forwardAsync(Batch batch, KvCache kv) {
                        if (!holding.get() || gate.getCount() == 0) return m.forwardAsync(batch, kv);
                        CompletionStage<ForwardResult> pass = m.forwardAsync(batch, kv);
                        pass.toCompletableFuture().join();
                        duringGate.add(batch.size() + " draft rows, main verification " + (driver.isDone(main[0].passEvent()) ? "done" : "pending"));
                        return pass;
                    }
                };
            }

            @Override
            public void close() {
                for (CudaModel m : loaded) m.close();
                cuda.close();
            }
        };
        List<int[]> plain = new ArrayList<>(), speculative = new ArrayList<>();
        try (traced; Engine engine = Tandem.builder().model(MAIN).draft(DRAFT).backend(traced).threads(1).parallel(PROMPTS.length)
                .prefixCache(false).draftAhead(true).build()) {
            for (String p : PROMPTS) plain.add(engine.generateBlocking(request(p, DraftSettings.off())).tokenIds());
            List<Generation> running = new ArrayList<>();
            for (String p : PROMPTS) running.add(engine.generate(request(p, DraftSettings.model("kjv-draft-q8_0").withLimits(4, 0, 0))));
            for (Generation g : running) speculative.add(g.await().tokenIds());
        } finally {
            gate.countDown();
        }
        for (int i = 0; i < PROMPTS.length; i++) assertArrayEquals(plain.get(i), speculative.get(i), PROMPTS[i]);
        System.out.println("while the first batched verification was held: " + duringGate);
        assertTrue(holding.get(), "no verification of several sequences' drafts was seen");
        // The guesses of the main model's tokens (one pass for all sequences), then at least the first pass of the next drafts.
        assertTrue(duringGate.size() >= 2, duringGate.toString());
        for (String s : duringGate) assertTrue(s.endsWith("pending"), duringGate.toString());
    }

    static GenerationRequest request(String prompt, DraftSettings draft) {
        return GenerationRequest.builder().prompt(prompt).maxTokens(TOKENS).ignoreEndOfGeneration(true).draft(draft).build();
    }

    /** A verification pass (logits for every row) carrying rows of more than one sequence. */
    static boolean verifiesDraftsOfSeveral(Batch batch) {
        long sequences = Arrays.stream(batch.sequences()).distinct().count();
        return sequences > 1 && batch.logitRows().length > sequences;
    }
}
