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
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The prefill GEMM seam on whole models: a KJV prompt prefilled through the emulated gemmEx gives logits within
 * tolerance of the CPU backend and the same greedy tokens ({@link CudaGemmPrefillTest}: the GEMM and its narrowing
 * kernels alone). Kept out of the kernel tests, which the kernel sanitizers run again.
 */
class CudaGemmPrefillModelTest {
    /**
     * Prompts of 30 tokens (a reference prompt and the first tokens of its greedy continuation), prefilled in one
     * chunk through the GEMM (threshold lowered to 18 rows): the last row's logits are within 2% of the largest
     * logit of the CPU backend's, and greedy decoding continues with the kernel path's tokens, which are the
     * reference engine's for the F32 models.
     */
    @Test
    void kjvPromptsPrefilledThroughTheGemmKeepTheirTokens() {
        assumeTrue(HostKernels.isAvailable(), () -> "host-emulation kernels not built: " + HostKernels.unavailableReason());
        List<Generation> refs = ReferenceRecords.generations("kjv-main-f32.jsonl");
        HostGpuDriver driver = new HostGpuDriver();
        try (CudaBackend withGemm = new CudaBackend(driver, new HostGemm(driver), null); CudaBackend kernelsOnly = new CudaBackend(driver);
             CpuBackend cpu = new CpuBackend()) {
            for (String name : List.of("kjv-main-f32.gguf", "kjv-main-q8_0.gguf")) {
                try (ModelFile file = ModelFile.open(SharedData.kjv(name));
                     CudaModel gemmModel = (CudaModel) withGemm.load(file, LoadOptions.defaults());
                     LoadedModel plainModel = kernelsOnly.load(file, LoadOptions.defaults());
                     LoadedModel cpuModel = cpu.load(file, LoadOptions.defaults().withThreads(1))) {
                    gemmModel.gemmRows(18);
                    for (Generation g : refs.subList(0, 2)) {
                        int[] prompt = concat(g.promptTokens(), Arrays.copyOf(g.tokens(), 30 - g.promptTokens().length));
                        long before = gemmModel.gemmCalls();
                        float[] gemmLogits = lastLogits(gemmModel, prompt), cpuLogits = lastLogits(cpuModel, prompt);
                        assertTrue(gemmModel.gemmCalls() > before, "the prefill should have run through the GEMM");
                        float scale = ModelRuns.maxAbs(cpuLogits), diff = ModelRuns.maxAbsDifference(gemmLogits, cpuLogits);
                        System.out.printf("%s, '%s' + %d tokens: max logit difference to the CPU %.4f (largest logit %.2f)%n",
                                name, g.prompt(), prompt.length - g.promptTokens().length, diff, scale);
                        assertTrue(diff <= 0.02f * scale, name + ": logits differ from the CPU backend's by " + diff + " (largest " + scale + ")");
                        int[] expected = ModelRuns.greedy(plainModel, prompt, 4);
                        assertArrayEquals(expected, ModelRuns.greedy(gemmModel, prompt, 4), name + " '" + g.prompt() + "'");
                        if (name.contains("f32")) assertArrayEquals(Arrays.copyOfRange(g.tokens(), prompt.length - g.promptTokens().length, prompt.length - g.promptTokens().length + 4), expected);
                    }
                }
            }
        }
    }

    private static float[] lastLogits(LoadedModel model, int[] prompt) {
        PagedKvCache tables = new PagedKvCache(16, prompt.length / 16 + 1);
        try (KvCache kv = model.createKvCache(tables)) {
            int seq = tables.createSequence();
            tables.reserve(seq, prompt.length);
            float[] out = new float[model.config().vocabularySize()];
            model.forward(Batch.of(seq, 0, prompt, false), kv).copyLogits(0, out);
            return out;
        }
    }

    private static int[] concat(int[] a, int[] b) {
        int[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

}
