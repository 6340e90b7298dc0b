package dev.tandem.engine;

import dev.tandem.model.ModelFile;
import dev.tandem.runtime.Backend;
import dev.tandem.runtime.Batch;
import dev.tandem.runtime.DeviceSampling;
import dev.tandem.runtime.ForwardResult;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.LoadOptions;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.runtime.cuda.CudaBackend;
import dev.tandem.runtime.cuda.HostKernels;
import dev.tandem.testing.ForwardingDeviceSampling;
import dev.tandem.testing.ForwardingModel;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Issue 18, device verification for batches: on a CUDA backend (the host emulation) speculative sequences that
 * sample without a penalty are verified on the device when they run together, in the one pass they share, and each
 * still gets exactly the tokens it gets alone (the device's draws are keyed by seed and position; a sequence's
 * rows do not depend on the others). Greedy and penalised sequences in the same pass verify on the host from its
 * results, as alone.
 */
class DeviceVerifiedBatchTest {
    static final String[] PROMPTS = {"In the beginning God created", "And the LORD said unto Moses", "Blessed are the", "The LORD is my shepherd"};
    static final int TOKENS = 10;

    static Counting backend;
    static Engine engine;

    @BeforeAll
    static void open() {
        assumeTrue(HostKernels.isAvailable(), () -> "host-emulation kernels not built: " + HostKernels.unavailableReason());
        backend = new Counting(CudaBackend.onHost());
        engine = Tandem.builder().model(EngineTest.MAIN).draft(EngineTest.DRAFT).backend(backend).parallel(PROMPTS.length).maxQueue(0)
                .prefixCache(false).draftAhead(true).build();
    }

    @AfterAll
    static void close() {
        if (backend != null) backend.open();
        if (engine != null) engine.close();
        if (backend != null) backend.close();
    }

    static GenerationRequest request(String prompt, SamplingSettings sampling) {
        return GenerationRequest.builder().prompt(prompt).maxTokens(TOKENS).ignoreEndOfGeneration(true).sampling(sampling)
                .draft(DraftSettings.model(SpeculativeEngineTest.DRAFT_ID).withLimits(4, 0, 0)).build();
    }

    @Test
    void sampledSequencesTogetherAreEachVerifiedOnTheDeviceAndGetTheirTokensAlone() {
        List<GenerationRequest> requests = new ArrayList<>();
        for (int i = 0; i < PROMPTS.length; i++) {
            SamplingSettings sampling = SamplingSettings.defaults(100 + i).withTemperature(0.9);
            requests.add(request(PROMPTS[i], i == 2 ? sampling.withTopK(5) : sampling));     // one with its own chain
        }
        backend.reset();
        runTogetherAndCompare(requests);
        assertEquals(0, backend.hostVerifications.get(), "a sampled sequence was verified on the host");
        assertTrue(backend.mostVerifiedTogether.get() >= 2, "no pass verified several sequences on the device: " + backend.mostVerifiedTogether.get());
        assertTrue(backend.verifiedOnDevice.get() >= 2L * PROMPTS.length, "device verifications: " + backend.verifiedOnDevice.get());
    }

    @Test
    void greedyAndPenalisedSequencesBesideThemVerifyOnTheHostAsAlone() {
        List<GenerationRequest> requests = List.of(
                request(PROMPTS[0], SamplingSettings.defaults(7).withTemperature(0.9)),
                request(PROMPTS[1], SamplingSettings.greedy()),
                request(PROMPTS[2], new SamplingSettings(0.8, 40, 0.95, 0.05, 1.3, 64, 7)),
                request(PROMPTS[3], SamplingSettings.defaults(8).withTemperature(0.9)));
        backend.reset();
        List<int[]> outputs = runTogetherAndCompare(requests);
        GenerationRequest plainGreedy = GenerationRequest.builder().prompt(PROMPTS[1]).maxTokens(TOKENS).ignoreEndOfGeneration(true)
                .sampling(SamplingSettings.greedy()).draft(DraftSettings.off()).build();
        assertArrayEquals(engine.generateBlocking(plainGreedy).tokenIds(), outputs.get(1), "greedy speculative equals plain greedy");
        assertTrue(backend.mostVerifiedTogether.get() >= 2, "no pass verified several sequences on the device: " + backend.mostVerifiedTogether.get());
        assertTrue(backend.hostBesideDevice.get() > 0, "no pass verified a sequence on the host beside those on the device");
    }

    /** Each request alone, then all together (admitted while the gate holds the first pass); returns the outputs together. */
    static List<int[]> runTogetherAndCompare(List<GenerationRequest> requests) {
        List<int[]> alone = new ArrayList<>();
        for (GenerationRequest r : requests) alone.add(engine.generateBlocking(r).tokenIds());
        List<Generation> together = new ArrayList<>();
        backend.hold();
        try {
            for (GenerationRequest r : requests) together.add(engine.generate(r));
        } finally {
            backend.open();
        }
        List<int[]> outputs = new ArrayList<>();
        for (int i = 0; i < requests.size(); i++) {
            GenerationOutput out = together.get(i).await();
            assertArrayEquals(alone.get(i), out.tokenIds(), "request " + i + " together and alone");
            assertTrue(out.stats().draftTokens() > 0, out.stats().toString());
            outputs.add(out.tokenIds());
        }
        return outputs;
    }

    /**
     * The CUDA backend with its main model's passes counted: sequences verified on the device (and the most in one
     * pass), host verifications (an ordinary pass asking logits of two rows of one sequence), speculative sequences
     * left to the host in a device verification's pass; and a gate that holds the first pass until it opens.
     */
    static final class Counting implements Backend {
        final Backend inner;
        final AtomicInteger verifiedOnDevice = new AtomicInteger(), mostVerifiedTogether = new AtomicInteger();
        final AtomicInteger hostVerifications = new AtomicInteger(), hostBesideDevice = new AtomicInteger();
        private boolean held;

        Counting(Backend inner) { this.inner = inner; }

        void reset() {
            for (AtomicInteger a : List.of(verifiedOnDevice, mostVerifiedTogether, hostVerifications, hostBesideDevice)) a.set(0);
        }

        synchronized void hold() { held = true; }

        synchronized void open() {
            held = false;
            notifyAll();
        }

        private synchronized void gate() {
            try {
                while (held) wait();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted at the gate", e);
            }
        }

        /** Sequences of {@code batch} with logits asked for more than one row: verifications. */
        static int verifying(Batch batch) {
            int count = 0;
            int[] rows = batch.logitRows();
            for (int i = 1; i < rows.length; i++) {
                boolean sameAsPrevious = batch.sequences()[rows[i]] == batch.sequences()[rows[i - 1]];
                boolean firstOfItsRun = i < 2 || batch.sequences()[rows[i - 2]] != batch.sequences()[rows[i]];
                if (sameAsPrevious && firstOfItsRun) count++;
            }
            return count;
        }

        @Override public String name() { return inner.name(); }

        @Override
        public LoadedModel load(ModelFile file, LoadOptions options) {
            LoadedModel model = inner.load(file, options);
            if (options.draft()) return model;
            return new ForwardingModel(model) {
                @Override
                public ForwardResult forward(Batch batch, KvCache kv) {
                    gate();
                    hostVerifications.addAndGet(verifying(batch));
                    return target.forward(batch, kv);
                }

                @Override
                public CompletionStage<ForwardResult> forwardAsync(Batch batch, KvCache kv) {
                    gate();
                    hostVerifications.addAndGet(verifying(batch));
                    return target.forwardAsync(batch, kv);
                }

                @Override
                public Optional<DeviceSampling> deviceSampling() {
                    return target.deviceSampling().map(onDevice -> new ForwardingDeviceSampling(onDevice) {
                        @Override
                        public CompletionStage<SampledVerdicts> verifySampledAsync(Batch batch, KvCache kv, List<Verification> verifications) {
                            gate();
                            verifiedOnDevice.addAndGet(verifications.size());
                            mostVerifiedTogether.accumulateAndGet(verifications.size(), Math::max);
                            hostBesideDevice.addAndGet(verifying(batch) - verifications.size());
                            return super.verifySampledAsync(batch, kv, verifications);
                        }
                    });
                }

                @Override
                public void close() { target.close(); }
            };
        }

        @Override public void close() { inner.close(); }
    }
}
