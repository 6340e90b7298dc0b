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
