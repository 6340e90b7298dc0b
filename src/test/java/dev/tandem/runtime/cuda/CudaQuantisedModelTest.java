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
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

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
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** Q8_0 weights run as stored (block bytes on the device); weight types without a kernel are refused by name. */
class CudaQuantisedModelTest {
    static CudaBackend cuda;

    @BeforeAll
    static void open() {
        assumeTrue(HostKernels.isAvailable(), () -> "host-emulation kernels not built: " + HostKernels.unavailableReason());
        cuda = CudaBackend.onHost();
    }

    @AfterAll
    static void close() {
        if (cuda != null) cuda.close();
    }

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
             LoadedModel gpu = cuda.load(file, LoadOptions.defaults());
             LoadedModel cpu = new CpuBackend().load(dequantised(file, arena), LoadOptions.defaults().withThreads(2))) {
            for (Generation g : refs) {
                int[] expected = ModelRuns.greedy(cpu, g.promptTokens(), 16);
                assertArrayEquals(expected, ModelRuns.greedy(gpu, g.promptTokens(), 16), "'" + g.prompt() + "'");
            }
        }
    }

    /** {@code file} with every Q8_0 tensor decoded to F32 (block: f16 scale d, 32 int8 q; value = d * q). */
    static ModelFile dequantised(ModelFile file, Arena arena) {
        Map<String, Tensor> tensors = new HashMap<>();
        for (Tensor t : file.tensors()) {
            if (t.type() != TensorType.Q8_0) {
                tensors.put(t.name(), t);
                continue;
            }
            MemorySegment out = arena.allocate(t.elements() * Float.BYTES, 64);
            MemorySegment in = t.data();
            for (long b = 0; b < t.elements() / 32; b++) {
                float d = Float.float16ToFloat(in.get(ValueLayout.JAVA_SHORT_UNALIGNED, b * 34));
                for (int i = 0; i < 32; i++) out.setAtIndex(ValueLayout.JAVA_FLOAT, b * 32 + i, d * in.get(ValueLayout.JAVA_BYTE, b * 34 + 2 + i));
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

    @Test
    void aWeightTypeWithoutKernelIsRefusedNamingTheTensor() {
        try (ModelFile real = ModelFile.open(SharedData.kjv("kjv-draft-f32.gguf"))) {
            ModelFile q5 = new ModelFile() {
                @Override public Path path() { return real.path(); }
                @Override public String format() { return real.format(); }
                @Override public ModelConfig config() { return real.config(); }
                @Override public Collection<Tensor> tensors() { return real.tensors(); }

                @Override
                public Optional<Tensor> findTensor(String name) {
                    return real.findTensor(name).map(t -> name.equals("blk.1.ffn_down.weight")
                            ? new Tensor(t.name(), TensorType.Q5_K, t.shape(), t.data()) : t);
                }

                @Override public void close() {}
            };
            var e = assertThrows(UnsupportedWeightException.class, () -> cuda.load(q5, LoadOptions.defaults()));
            assertTrue(e.getMessage().contains("blk.1.ffn_down.weight") && e.getMessage().contains("Q5_K"), e.getMessage());
        }
    }
}
