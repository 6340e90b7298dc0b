package dev.tandem.runtime.cuda;

import dev.tandem.model.ModelFile;
import dev.tandem.runtime.Batch;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.LoadOptions;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.runtime.PagedKvCache;
import dev.tandem.testing.ReferenceRecords;
import dev.tandem.testing.ReferenceRecords.Generation;
import dev.tandem.testing.SharedData;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The CUDA backend on a real GPU (JCuda): greedy tokens are the reference engine's, rows are batch-invariant,
 * and the device result agrees with the host emulation within rounding (the GPU contracts a*b+c into FMA, so
 * not bit for bit). Skipped, with the probe's reason, where there is no usable device.
 */
@Tag("gpu")
class JCudaDeviceTest {
    static CudaBackend gpu;

    @BeforeAll
    static void open() {
        String reason = JCudaGpuDriver.probe();
        assumeTrue(reason == null, () -> "no CUDA device: " + reason);
        gpu = CudaBackend.onDevice();
        System.out.println("device: " + gpu.driver().describe());
        System.out.println("prefill GEMM: " + gpu.gemmStatus());
    }

    @AfterAll
    static void close() {
        if (gpu != null) gpu.close();
    }

    @Test
    void greedyTokensAreTheReferenceTokens() {
        for (String[] pair : new String[][] {{"kjv-main-f32.gguf", "kjv-main-f32.jsonl"}, {"kjv-draft-f32.gguf", "kjv-draft-f32.jsonl"}}) {
            try (ModelFile file = ModelFile.open(SharedData.kjv(pair[0])); LoadedModel m = gpu.load(file, LoadOptions.defaults())) {
                for (Generation g : ReferenceRecords.generations(pair[1])) {
                    assertArrayEquals(g.tokens(), ModelRuns.greedy(m, g.promptTokens(), g.tokens().length), pair[0] + " '" + g.prompt() + "'");
                }
            }
        }
    }

    /** With cuBLAS: a 30-token prompt prefilled through gemmEx continues with the reference tokens. */
    @Test
    void prefillThroughCublasKeepsTheReferenceTokens() {
        assumeTrue(gpu.gemm() != null, () -> "no cuBLAS: " + gpu.gemmStatus());
        try (ModelFile file = ModelFile.open(SharedData.kjv("kjv-main-f32.gguf")); CudaModel m = (CudaModel) gpu.load(file, LoadOptions.defaults())) {
            m.gemmRows(18);
            for (Generation g : ReferenceRecords.generations("kjv-main-f32.jsonl")) {
                int given = 30 - g.promptTokens().length;
                int[] prompt = Arrays.copyOf(g.promptTokens(), 30);
                System.arraycopy(g.tokens(), 0, prompt, g.promptTokens().length, given);
                long before = m.gemmCalls();
                int[] got = ModelRuns.greedy(m, prompt, 8);
                org.junit.jupiter.api.Assertions.assertTrue(m.gemmCalls() > before, "the prefill should have used cuBLAS");
                assertArrayEquals(Arrays.copyOfRange(g.tokens(), given, given + 8), got, "'" + g.prompt() + "'");
            }
        }
    }

    /** Sampled verification on the device: its verdict is the sampling kernels' on the same pass's logits (the host emulation's arithmetic is checked against it in CudaSampledVerificationTest). */
    @Test
    void sampledVerificationRunsOnTheDevice() {
        try (ModelFile file = ModelFile.open(SharedData.kjv("kjv-main-f32.gguf")); CudaModel m = (CudaModel) gpu.load(file, LoadOptions.defaults())) {
            Generation g = ReferenceRecords.generations("kjv-main-f32.jsonl").getFirst();
            int vocab = m.config().vocabularySize(), k = 3;
            float[] q = new float[k * vocab];
            for (int i = 0; i < k; i++) q[i * vocab + g.tokens()[i]] = 1f;   // a certain draft of the greedy tokens
            int[] rows = {g.promptTokens()[g.promptTokens().length - 1], g.tokens()[0], g.tokens()[1], g.tokens()[2]};
            PagedKvCache tables = new PagedKvCache(16, 4);
            try (KvCache kv = m.createKvCache(tables)) {
                int seq = tables.createSequence();
                int n = g.promptTokens().length;
                tables.reserve(seq, n + k);
                m.forward(Batch.of(seq, 0, Arrays.copyOf(g.promptTokens(), n - 1), false), kv);
                var verdict = m.verifySampled(Batch.of(seq, n - 1, rows, true), kv, new LoadedModel.SampledDraft(q, 0.05f, 0, 1f, 0f, 1));
                System.out.println("sampled verdict at temperature 0.05: " + verdict);
                org.junit.jupiter.api.Assertions.assertTrue(verdict.accepted() >= 0 && verdict.accepted() <= k && verdict.next() >= 0 && verdict.next() < vocab, verdict.toString());
            }
        }
    }

    @Test
    void rowLogitsHaveTheSameBitsInPassesOf1_2_5_17Rows() {
        Generation g = ReferenceRecords.generations("kjv-main-f32.jsonl").getFirst();
        int[] tokens = new int[17];
        System.arraycopy(g.promptTokens(), 0, tokens, 0, g.promptTokens().length);
        System.arraycopy(g.tokens(), 0, tokens, g.promptTokens().length, 17 - g.promptTokens().length);
        try (ModelFile file = ModelFile.open(SharedData.kjv("kjv-main-f32.gguf")); LoadedModel m = gpu.load(file, LoadOptions.defaults())) {
            float[][] one = null;
            for (int size : new int[] {1, 2, 5, 17}) {
                PagedKvCache tables = new PagedKvCache(16, 4);
                float[][] rows = new float[17][];
                try (KvCache kv = m.createKvCache(tables)) {
                    int seq = tables.createSequence();
                    for (int start = 0; start < 17; start += size) {
                        int n = Math.min(size, 17 - start);
                        tables.reserve(seq, start + n);
                        float[][] part = ModelRuns.logits(m.forward(Batch.of(seq, start, Arrays.copyOfRange(tokens, start, start + n), true), kv));
                        System.arraycopy(part, 0, rows, start, n);
                    }
                }
                if (one == null) one = rows;
                else CudaPassContractTest.assertSameBits(one, rows, "GPU passes of " + size + " rows vs 1");
            }
        }
    }
}
