package dev.tandem.runtime.cuda;

import dev.tandem.engine.DraftSettings;
import dev.tandem.engine.Engine;
import dev.tandem.engine.GenerationRequest;
import dev.tandem.engine.Tandem;
import dev.tandem.model.ModelFile;
import dev.tandem.runtime.Batch;
import dev.tandem.runtime.DeviceSampling;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.LoadOptions;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.runtime.PagedKvCache;
import dev.tandem.runtime.cpu.CpuBackend;
import dev.tandem.testing.StandInBackend;
import dev.tandem.tokenizer.Tokenizers;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The CUDA backend on a real GPU (JCuda), on the KJV Q8_0 pair tracked in {@code test-models/} — the GPU machine
 * has no {@code ../shared}, so the reference is the CPU backend computed there and then, on the same weights
 * dequantised to F32 (what the CUDA kernels compute: they decode blocks in registers and multiply F32
 * activations; the CPU backend's own Q8_0 path also quantises activations). Logits agree within rounding (the GPU
 * contracts a*b+c into FMA, so not bit for bit), greedy tokens are identical, rows are batch-invariant and greedy
 * speculative decoding equals plain decoding. Skipped, with the probe's reason, where there is no usable device;
 * {@code native-build/gpu-check.sh} treats that skip as a failure.
 *
 * <p>With {@code -Dtandem.emulatedCuda=DIR} (the pom's {@code emulated-cuda} test run, and {@code gpu-check.sh
 * --rehearse}) they run through {@link JCudaGpuDriver} and JCuda on the emulated CUDA driver of
 * {@code native-build/emulated-driver/}, with fewer tokens: the code the GPU run depends on has run before. With
 * {@code -Dtandem.gpuTest.hostEmulation=true} they run on {@link HostGpuDriver} instead.
 */
@Tag("gpu")
class JCudaDeviceTest {
    static final Path MAIN = Path.of("test-models/kjv-main-q8_0.gguf");
    static final Path DRAFT = Path.of("test-models/kjv-draft-q8_0.gguf");
    static final String[] PROMPTS = {"In the beginning God created", "And the LORD said unto Moses", "Blessed are the"};
    static final boolean ON_HOST = Boolean.getBoolean("tandem.gpuTest.hostEmulation");
    /** JCuda over the emulated driver (the pom's emulated-cuda run): the real path, on the host emulation's speed. */
    static final boolean EMULATED = !ON_HOST && EmulatedCuda.directory() != null;
    /** Prompts and tokens generated per prompt: the host emulation is slow. */
    static final int PROMPTS_USED = ON_HOST || EMULATED ? 1 : PROMPTS.length, TOKENS = ON_HOST || EMULATED ? 10 : 32;
    /** Largest allowed |gpu - cpu| per logit, relative to the row's largest |logit| (at least 1): rounding only. */
    static final float TOLERANCE = 1e-3f;

    static CudaBackend gpu;
    static Arena arena;
    static ModelFile mainFile, draftFile;
    static LoadedModel main, draft, mainCpu, draftCpu;
    static List<int[]> prompts = new ArrayList<>();

    @BeforeAll
    static void open() {
        if (ON_HOST) {
            assumeTrue(HostKernels.isAvailable(), () -> "host-emulation kernels not built: " + HostKernels.unavailableReason());
            gpu = CudaBackend.onHost();
        } else {
            String reason = JCudaGpuDriver.probe();
            assumeTrue(reason == null, () -> "no CUDA device: " + reason);
            gpu = CudaBackend.onDevice();
        }
        System.out.println("device: " + gpu.driver().describe() + " (driver: " + gpu.driver().getClass().getSimpleName() + ")");
        System.out.println("prefill GEMM: " + gpu.gemmStatus());
        System.out.println("CUDA graphs by default: " + Boolean.getBoolean("tandem.cudaGraphs"));
        arena = Arena.ofShared();
        mainFile = ModelFile.open(MAIN);
        draftFile = ModelFile.open(DRAFT);
        main = gpu.load(mainFile, LoadOptions.defaults());
        draft = gpu.load(draftFile, LoadOptions.defaults());
        LoadOptions cpuOptions = LoadOptions.defaults().withThreads(Math.min(8, Runtime.getRuntime().availableProcessors()));
        mainCpu = new CpuBackend().load(CudaQuantisedModelTest.dequantised(mainFile, arena), cpuOptions);
        draftCpu = new CpuBackend().load(CudaQuantisedModelTest.dequantised(draftFile, arena), cpuOptions);
        var tokenizer = Tokenizers.forModel(mainFile);
        for (int i = 0; i < PROMPTS_USED; i++) prompts.add(tokenizer.encode(PROMPTS[i], true, true));
    }

    @AfterAll
    static void close() {
        for (AutoCloseable c : new AutoCloseable[] {draftCpu, mainCpu, draft, main, draftFile, mainFile, gpu}) {
            try {
                if (c != null) c.close();
            } catch (Exception ignored) {
                // best effort: the JVM ends after the tests
            }
        }
        if (arena != null) arena.close();
    }

    @Test
    void promptLogitsAndGreedyTokensAreTheCpuBackends() {
        for (LoadedModel[] pair : new LoadedModel[][] {{main, mainCpu}, {draft, draftCpu}}) {
            String name = pair[0] == main ? "main" : "draft";
            float worst = 0;
            for (int i = 0; i < prompts.size(); i++) {
                int[] prompt = prompts.get(i);
                worst = Math.max(worst, CudaVersusCpuTest.compare(promptLogits(pair[0], prompt), promptLogits(pair[1], prompt),
                        name + " '" + PROMPTS[i] + "'", TOLERANCE));
                assertArrayEquals(ModelRuns.greedy(pair[1], prompt, TOKENS), ModelRuns.greedy(pair[0], prompt, TOKENS), name + " '" + PROMPTS[i] + "'");
            }
            System.out.printf("%s: max |gpu - cpu| = %.3g of the row's max |logit|; greedy tokens identical%n", name, worst);
        }
    }

    /**
     * Greedy speculative decoding in the engine gives plain decoding's tokens: drafting ahead (draft and verification
     * on their own streams) at draft-max 1..6 (1..2 on the host emulation) and drafting after the verification at 4;
     * plain decoding with CUDA graphs on and off.
     */
    @Test
    void greedySpeculativeDecodingEqualsPlainDecoding() {
        List<String> failures = new ArrayList<>();
        CudaModel cudaMain = (CudaModel) main;
        List<int[]> plains = new ArrayList<>();
        try (Engine engine = engine(true)) {
            for (int i = 0; i < prompts.size(); i++) {
                int[] prompt = prompts.get(i);
                cudaMain.useGraphs(false);
                int[] direct = generate(engine, prompt, DraftSettings.off());
                cudaMain.useGraphs(true);
                int[] plain = generate(engine, prompt, DraftSettings.off());
                plains.add(plain);
                if (!Arrays.equals(direct, plain)) failures.add("'" + PROMPTS[i] + "': plain decoding differs with CUDA graphs");
                for (int k = 1 + 2 * i; k <= 2 + 2 * i; k++) {
                    int[] got = generate(engine, prompt, drafting(k));
                    if (!Arrays.equals(plain, got)) failures.add("'" + PROMPTS[i] + "' draft-ahead, draft-max " + k + ": " + Arrays.toString(got) + " vs plain " + Arrays.toString(plain));
                }
            }
        }
        try (Engine engine = engine(false)) {
            for (int i = 0; i < prompts.size(); i++) {
                int[] sequential = generate(engine, prompts.get(i), drafting(4));
                if (!Arrays.equals(plains.get(i), sequential)) failures.add("'" + PROMPTS[i] + "' sequential, draft-max 4: " + Arrays.toString(sequential) + " vs plain " + Arrays.toString(plains.get(i)));
            }
        }
        cudaMain.useGraphs(Boolean.getBoolean("tandem.cudaGraphs"));
        assertEquals(List.of(), failures);
    }

    /** An engine over the loaded pair, one sequence at a time, drafting ahead during verifications or not. */
    static Engine engine(boolean draftAhead) {
        return Tandem.builder().model(MAIN).draft("draft", DRAFT).backend(new StandInBackend(gpu.name(), main, draft))
                .parallel(1).draftAhead(draftAhead).build();
    }

    static DraftSettings drafting(int draftMax) {
        return DraftSettings.model("draft").withLimits(draftMax, 0, 0);
    }

    /** Greedy: TOKENS tokens after {@code prompt}. */
    static int[] generate(Engine engine, int[] prompt, DraftSettings draft) {
        return engine.generateBlocking(GenerationRequest.builder().promptTokens(prompt).maxTokens(TOKENS).ignoreEndOfGeneration(true)
                .draft(draft).build()).tokenIds();
    }

    /** A 30-token prompt in one pass (through cuBLAS where it loads, else the batched kernels) continues as the CPU does. */
    @Test
    void aLongPromptPassContinuesWithTheCpuBackendsTokens() {
        CudaModel m = (CudaModel) main;
        int[] prompt = Arrays.copyOf(prompts.getFirst(), 30);
        int[] continuation = ModelRuns.greedy(mainCpu, prompts.getFirst(), 30 - prompts.getFirst().length);
        System.arraycopy(continuation, 0, prompt, prompts.getFirst().length, continuation.length);
        int before = m.gemmRows();
        long calls = m.gemmCalls();
        if (gpu.gemm() != null) m.gemmRows(18);
        try {
            float tolerance = gpu.gemm() != null ? 0.02f : TOLERANCE;   // gemmEx multiplies 16-bit copies of weights and activations
            float worst = CudaVersusCpuTest.compare(promptLogits(main, prompt), promptLogits(mainCpu, prompt), "30-token prompt", tolerance);
            assertArrayEquals(ModelRuns.greedy(mainCpu, prompt, 8), ModelRuns.greedy(main, prompt, 8), "continuation of a 30-token prompt");
            if (gpu.gemm() != null) assertTrue(m.gemmCalls() > calls, "the prefill should have used " + gpu.gemmStatus());
            System.out.printf("30-token prompt (%s): max |gpu - cpu| = %.3g of the row's max |logit|%n",
                    gpu.gemm() != null ? gpu.gemmStatus() : "batched kernels, " + gpu.gemmStatus(), worst);
        } finally {
            m.gemmRows(before);
        }
    }

    /** Sampled verification on the device: a valid verdict from the sampling kernels (their arithmetic: CudaSampledVerificationTest). */
    @Test
    void sampledVerificationRunsOnTheDevice() {
        CudaModel m = (CudaModel) main;
        int[] prompt = prompts.getFirst();
        int[] tokens = ModelRuns.greedy(mainCpu, prompt, 3);
        int vocab = m.config().vocabularySize(), k = 3;
        float[] q = new float[k * vocab];
        for (int i = 0; i < k; i++) q[i * vocab + tokens[i]] = 1f;   // a certain draft of the greedy tokens
        int[] rows = {prompt[prompt.length - 1], tokens[0], tokens[1], tokens[2]};
        PagedKvCache tables = new PagedKvCache(16, 4);
        try (KvCache kv = m.createKvCache(tables)) {
            int seq = tables.createSequence();
            int n = prompt.length;
            tables.reserve(seq, n + k);
            m.forward(Batch.of(seq, 0, Arrays.copyOf(prompt, n - 1), false), kv);
            var verdict = m.sampling().verifySampled(Batch.of(seq, n - 1, rows, true), kv, new DeviceSampling.SampledDraft(q, 0.05f, 0, 1f, 0f, 1));
            System.out.println("sampled verdict at temperature 0.05: " + verdict);
            assertTrue(verdict.accepted() >= 0 && verdict.accepted() <= k && verdict.next() >= 0 && verdict.next() < vocab, verdict.toString());
        }
    }

    /** Batch invariance (on the host emulation, only 5 against 17: CudaPassContractTest covers the rest there). */
    @Test
    void rowLogitsHaveTheSameBitsInPassesOf1_2_5_17Rows() {
        int[] prompt = prompts.getFirst();
        int[] tokens = Arrays.copyOf(prompt, 17);
        System.arraycopy(ModelRuns.greedy(mainCpu, prompt, 17 - prompt.length), 0, tokens, prompt.length, 17 - prompt.length);
        float[][] one = null;
        for (int size : ON_HOST || EMULATED ? new int[] {5, 17} : new int[] {1, 2, 5, 17}) {
            PagedKvCache tables = new PagedKvCache(16, 4);
            float[][] rows = new float[17][];
            try (KvCache kv = main.createKvCache(tables)) {
                int seq = tables.createSequence();
                for (int start = 0; start < 17; start += size) {
                    int n = Math.min(size, 17 - start);
                    tables.reserve(seq, start + n);
                    float[][] part = ModelRuns.logits(main.forward(Batch.of(seq, start, Arrays.copyOfRange(tokens, start, start + n), true), kv));
                    System.arraycopy(part, 0, rows, start, n);
                }
            }
            if (one == null) one = rows;
            else CudaPassContractTest.assertSameBits(one, rows, "passes of " + size + " rows vs " + (ON_HOST || EMULATED ? 5 : 1));
        }
    }

    /** Logits of every row of {@code prompt}, run as one pass in a fresh cache. */
    static float[][] promptLogits(LoadedModel model, int[] prompt) {
        PagedKvCache tables = new PagedKvCache(16, prompt.length / 16 + 2);
        try (KvCache kv = model.createKvCache(tables)) {
            int seq = tables.createSequence();
            tables.reserve(seq, prompt.length);
            return ModelRuns.logits(model.forward(Batch.of(seq, 0, prompt, true), kv));
        }
    }
}
