package dev.tandem.runtime.cuda;

import dev.tandem.model.ModelFile;
import dev.tandem.runtime.Batch;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.LoadOptions;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.runtime.PagedKvCache;
import dev.tandem.runtime.cpu.CpuBackend;
import dev.tandem.testing.ReferenceRecords;
import dev.tandem.testing.ReferenceRecords.Generation;
import dev.tandem.testing.SharedData;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The CUDA backend on the host emulation computes what the CPU backend computes: logits of a prompt pass and of
 * decode steps agree within float rounding (different but fixed reduction orders), and greedy continuations
 * are the reference engine's tokens, which the CPU backend reproduces exactly for F32 weights.
 */
class CudaVersusCpuTest {
    /** Largest allowed |cuda - cpu| per logit, relative to the row's largest |logit| (at least 1). */
    static final float TOLERANCE = 1e-4f;
    static final int TOKENS = 16;

    @RegisterExtension
    static final CudaHostFixture HOST = new CudaHostFixture();

    static LoadOptions options() { return LoadOptions.defaults().withThreads(2); }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"kjv-main-f32.gguf", "kjv-draft-f32.gguf", "main-hf"})
    void promptAndDecodeLogitsAgreeWithTheCpu(String model) {
        Generation g = ReferenceRecords.generations("kjv-main-f32.jsonl").getFirst();
        try (ModelFile file = ModelFile.open(SharedData.kjv(model));
             LoadedModel gpu = HOST.cuda().load(file, options());
             LoadedModel cpu = new CpuBackend().load(file, options())) {
            PagedKvCache tables = new PagedKvCache(16, 8);
            try (KvCache gpuKv = gpu.createKvCache(tables); KvCache cpuKv = cpu.createKvCache(tables)) {
                int seq = tables.createSequence();
                int[] prompt = g.promptTokens();
                tables.reserve(seq, prompt.length);
                Batch promptBatch = Batch.of(seq, 0, prompt, true);
                float worst = compare(ModelRuns.logits(gpu.forward(promptBatch, gpuKv)), ModelRuns.logits(cpu.forward(promptBatch, cpuKv)),
                        model + " prompt");
                int pos = prompt.length;
                for (int step = 0; step < 4; step++, pos++) {
                    tables.reserve(seq, pos + 1);
                    Batch b = Batch.of(seq, pos, new int[] {g.tokens()[step]}, false);
                    worst = Math.max(worst, compare(ModelRuns.logits(gpu.forward(b, gpuKv)), ModelRuns.logits(cpu.forward(b, cpuKv)),
                            model + " decode step " + step));
                }
                System.out.printf("%s: max |cuda-host - cpu| = %.3g of the row's max |logit|%n", model, worst);
            }
        }
    }

    /** The largest relative difference; fails above {@link #TOLERANCE}. */
    static float compare(float[][] gpu, float[][] cpu, String what) { return compare(gpu, cpu, what, TOLERANCE); }

    /** The largest relative difference; fails above {@code tolerance}. */
    static float compare(float[][] gpu, float[][] cpu, String what, float tolerance) {
        float worst = 0;
        for (int r = 0; r < cpu.length; r++) {
            float scale = Math.max(1, ModelRuns.maxAbs(cpu[r]));
            float d = ModelRuns.maxAbsDifference(gpu[r], cpu[r]) / scale;
            assertTrue(d <= tolerance, what + " row " + r + ": |cuda - cpu| reaches " + d + " x " + scale);
            worst = Math.max(worst, d);
        }
        return worst;
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"kjv-main-f32.gguf:kjv-main-f32.jsonl:3", "kjv-draft-f32.gguf:kjv-draft-f32.jsonl:3", "main-hf:kjv-main-f32.jsonl:1"})
    void greedyTokensAreTheReferenceTokens(String spec) {
        String[] p = spec.split(":");  // model, reference, prompts (the host emulation is slow: few of them)
        List<Generation> refs = ReferenceRecords.generations(p[1]).subList(0, Integer.parseInt(p[2]));
        try (ModelFile file = ModelFile.open(SharedData.kjv(p[0])); LoadedModel gpu = HOST.cuda().load(file, options())) {
            for (Generation g : refs) {
                int[] expected = java.util.Arrays.copyOf(g.tokens(), TOKENS);
                assertArrayEquals(expected, ModelRuns.greedy(gpu, g.promptTokens(), TOKENS), p[0] + " '" + g.prompt() + "'");
            }
        }
    }
}
