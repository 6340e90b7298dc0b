package dev.tandem.runtime.cuda;

import dev.tandem.model.ModelConfig;
import dev.tandem.model.ModelFile;
import dev.tandem.model.Tensor;
import dev.tandem.model.TensorType;
import dev.tandem.runtime.LoadOptions;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.testing.ReferenceRecords;
import dev.tandem.testing.ReferenceRecords.Generation;
import dev.tandem.testing.SharedData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import dev.tandem.forge.Forge;
import dev.tandem.forge.ForgeSpec;
import dev.tandem.forge.ForgeType;
import dev.tandem.runtime.Batch;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.PagedKvCache;
import java.io.IOException;

import dev.tandem.runtime.cpu.CpuBackend;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Collection;
import java.util.List;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Quantised weights run as stored (block bytes on the device, decoded in registers): Q8_0, Q5_K, the Q4_K_M mix. */
class CudaQuantisedModelTest {
    @RegisterExtension
    static final CudaHostFixture HOST = new CudaHostFixture();

    /**
     * The reference engine also quantises activations to Q8_0 for Q8_0 weights, so its tokens are not ours to
     * match; the CPU backend running the same weights dequantised to F32 is: the CUDA kernels decode the blocks
     * in registers and multiply F32 activations, which is that computation.
     */
    @Test
    void q8_0DraftMatchesTheCpuOnTheDequantisedWeights() {
        List<Generation> refs = ReferenceRecords.generations("kjv-draft-q8_0.jsonl").subList(0, 3);
        try (Arena arena = Arena.ofShared();
             ModelFile file = ModelFile.open(SharedData.kjv("kjv-draft-q8_0.gguf"));
             LoadedModel gpu = HOST.cuda().load(file, LoadOptions.defaults());
             LoadedModel cpu = new CpuBackend().load(dequantised(file, arena), LoadOptions.defaults().withThreads(2))) {
            for (Generation g : refs) {
                int[] expected = ModelRuns.greedy(cpu, g.promptTokens(), 16);
                assertArrayEquals(expected, ModelRuns.greedy(gpu, g.promptTokens(), 16), "'" + g.prompt() + "'");
            }
        }
    }

    /**
     * {@code file} with every quantised tensor decoded to F32. Q8_0 by hand from the format (block: f16 scale d,
     * 32 int8 q; value = d * q); the K-quants through the model package's {@link TensorType#dequantize}.
     */
    static ModelFile dequantised(ModelFile file, Arena arena) {
        Map<String, Tensor> tensors = new HashMap<>();
        for (Tensor t : file.tensors()) {
            if (!t.type().isQuantized()) {
                tensors.put(t.name(), t);
                continue;
            }
            MemorySegment out = arena.allocate(t.elements() * Float.BYTES, 64);
            MemorySegment in = t.data();
            if (t.type() == TensorType.Q8_0) {
                for (long b = 0; b < t.elements() / 32; b++) {
                    float d = Float.float16ToFloat(in.get(ValueLayout.JAVA_SHORT_UNALIGNED, b * 34));
                    for (int i = 0; i < 32; i++) out.setAtIndex(ValueLayout.JAVA_FLOAT, b * 32 + i, d * in.get(ValueLayout.JAVA_BYTE, b * 34 + 2 + i));
                }
            } else {
                int block = t.type().blockSize();
                float[] values = new float[block];
                for (long b = 0; b < t.elements() / block; b++) {
                    t.type().dequantize(in, b * t.type().blockBytes(), values, 0, block);
                    MemorySegment.copy(values, 0, out, ValueLayout.JAVA_FLOAT, b * block * Float.BYTES, block);
                }
            }
            tensors.put(t.name(), new Tensor(t.name(), TensorType.F32, t.shape(), out));
        }
        return new ModelFile() {
            @Override public Path path() { return file.path(); }
            @Override public String format() { return file.format(); }
            @Override public ModelConfig config() { return file.config(); }
            @Override public Collection<Tensor> tensors() { return tensors.values(); }
            @Override public Optional<Tensor> findTensor(String name) { return Optional.ofNullable(tensors.get(name)); }
            @Override public void close() {}
        };
    }

    /**
     * Q5_K (and the Q4_K_M mix: Q4_K with Q6_K for some matrices) run as stored: a forged tiny model's logits on
     * the device equal, within float rounding, the CPU backend's on the same weights dequantised to F32 (the CPU
     * backend's own K-quant path quantises activations to Q8_K, which the CUDA kernels do not), and greedy tokens
     * are identical.
     */
    @ParameterizedTest(name = "{0}")
    @EnumSource(value = ForgeType.class, names = {"Q5_K", "Q4_K_M"})
    void kQuantForgedModelMatchesTheCpuOnTheDequantisedWeights(ForgeType type, @TempDir Path tmp) throws IOException {
        Path path = tmp.resolve("tiny-" + type + ".gguf");
        Forge.write(ForgeSpec.preset("tiny").withType(type), path);
        int[] prompt = {1, 300, 301, 302, 303, 304, 305, 306};
        try (Arena arena = Arena.ofShared();
             ModelFile file = ModelFile.open(path);
             LoadedModel gpu = HOST.cuda().load(file, LoadOptions.defaults());
             LoadedModel cpu = new CpuBackend().load(dequantised(file, arena), LoadOptions.defaults().withThreads(2))) {
            assertTrue(file.tensors().stream().anyMatch(t -> t.type() == (type == ForgeType.Q5_K ? TensorType.Q5_K : TensorType.Q4_K)),
                    "the forged file holds " + type + " tensors");
            PagedKvCache tables = new PagedKvCache(16, 2);
            float worst;
            try (KvCache gpuKv = gpu.createKvCache(tables); KvCache cpuKv = cpu.createKvCache(tables)) {
                int seq = tables.createSequence();
                tables.reserve(seq, prompt.length);
                Batch b = Batch.of(seq, 0, prompt, true);
                worst = CudaVersusCpuTest.compare(ModelRuns.logits(gpu.forward(b, gpuKv)), ModelRuns.logits(cpu.forward(b, cpuKv)), type + " prompt");
            }
            System.out.printf("%s tiny: max |cuda-host - cpu on dequantised weights| = %.3g of the row's max |logit|%n", type, worst);
            assertArrayEquals(ModelRuns.greedy(cpu, prompt, 8), ModelRuns.greedy(gpu, prompt, 8), type + " greedy tokens");
        }
    }

    @ParameterizedTest
    @EnumSource(TensorType.class)
    void everyWeightTypeTheModelPackageReadsHasAMatvecAndAnEmbeddingKernel(TensorType type) {
        assertTrue(Kernel.matvec(type, 1).cudaName().startsWith("matvec_"));
        assertTrue(Kernel.matvecSwiglu(type, 8).cudaName().startsWith("matvec_swiglu_"));
        assertTrue(Kernel.embedding(type).cudaName().startsWith("embedding_"));
    }
}
