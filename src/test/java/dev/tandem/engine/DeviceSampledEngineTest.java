package dev.tandem.engine;

import dev.tandem.runtime.cuda.CudaBackend;
import dev.tandem.runtime.cuda.ForwardingGpuDriver;
import dev.tandem.runtime.cuda.GpuDriver;
import dev.tandem.runtime.cuda.GpuStream;
import dev.tandem.runtime.cuda.HostGpuDriver;
import dev.tandem.runtime.cuda.HostKernels;
import dev.tandem.runtime.cuda.Kernel;
import dev.tandem.runtime.cuda.LaunchDims;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The engine on a CUDA backend (the host emulation): a lone speculative request that samples without a
 * repetition penalty is verified on the device ({@code accept_sampled_batch} runs, only the verdict comes back) and a
 * seed still gives one output; greedy and penalised requests keep the ordinary pass.
 */
class DeviceSampledEngineTest {
    static final AtomicInteger acceptSampled = new AtomicInteger();
    static CudaBackend cuda;
    static Engine engine;

    @BeforeAll
    static void open() {
        assumeTrue(HostKernels.isAvailable(), () -> "host-emulation kernels not built: " + HostKernels.unavailableReason());
        GpuDriver counting = new ForwardingGpuDriver(new HostGpuDriver()) {
            @Override
            public void launch(Kernel kernel, LaunchDims dims, GpuStream s, Object... args) {
                if (kernel == Kernel.ACCEPT_SAMPLED_BATCH) acceptSampled.incrementAndGet();
                target.launch(kernel, dims, s, args);
            }
        };
        cuda = new CudaBackend(counting);
        engine = Tandem.builder().model(EngineTest.MAIN).draft(EngineTest.DRAFT).backend(cuda).parallel(1).maxQueue(4).build();
    }

    @AfterAll
    static void close() {
        if (engine != null) engine.close();
        if (cuda != null) cuda.close();
    }

    static GenerationOutput run(SamplingSettings sampling) {
        return engine.generateBlocking(GenerationRequest.builder().prompt(EngineTest.PROMPTS[0]).maxTokens(16).sampling(sampling)
                .draft(DraftSettings.model("kjv-draft-q8_0").withLimits(4, 0, 0)).build());
    }

    @Test
    void aLoneSampledSpeculativeRequestIsVerifiedOnTheDevice() {
        int before = acceptSampled.get();
        GenerationOutput a = run(SamplingSettings.defaults(7));
        int verifications = acceptSampled.get() - before;
        assertTrue(verifications > 0, "no verification ran accept_sampled_batch");
        assertTrue(a.stats().draftTokens() > 0, a.stats().toString());
        assertArrayEquals(a.tokenIds(), run(SamplingSettings.defaults(7)).tokenIds(), "a seed gives one output");
    }

    @Test
    void greedyAndPenalisedRequestsKeepTheOrdinaryPass() {
        int before = acceptSampled.get();
        GenerationOutput greedy = run(SamplingSettings.greedy());
        GenerationOutput plain = engine.generateBlocking(GenerationRequest.builder().prompt(EngineTest.PROMPTS[0]).maxTokens(16)
                .sampling(SamplingSettings.greedy()).draft(DraftSettings.off()).build());
        assertArrayEquals(plain.tokenIds(), greedy.tokenIds(), "greedy speculative equals plain greedy");
        run(new SamplingSettings(0.8, 40, 0.95, 0.05, 1.3, 64, 7));
        assertEquals(before, acceptSampled.get(), "greedy and penalised verifications do not sample on the device");
    }
}
