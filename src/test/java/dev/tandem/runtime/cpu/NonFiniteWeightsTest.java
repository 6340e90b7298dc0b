package dev.tandem.runtime.cpu;

import dev.tandem.model.ModelFile;
import dev.tandem.model.Tensor;
import dev.tandem.runtime.Batch;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.LoadOptions;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.runtime.NonFiniteOutputException;
import dev.tandem.runtime.PagedKvCache;
import dev.tandem.testing.GgufCopy;
import dev.tandem.testing.SharedData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Issue 14, defect 5: a model whose weights hold NaN fails its forward pass with a named error that says which
 * layer first produced non-finite values (or that it was the output head), instead of handing NaN logits on.
 */
class NonFiniteWeightsTest {
    @TempDir Path tmp;

    /** The KJV draft (3 layers) with the first value of F32 vector {@code tensor} set to NaN. */
    private Path withNaN(String tensor) {
        return GgufCopy.of(SharedData.kjv("kjv-draft-q8_0.gguf"), tmp.resolve("nan.gguf"), w -> {}, t -> {
            if (!t.name().equals(tensor)) return t;
            MemorySegment copy = Arena.ofAuto().allocate(t.data().byteSize());
            copy.copyFrom(t.data());
            copy.set(ValueLayout.JAVA_FLOAT_UNALIGNED, 0, Float.NaN);
            return new Tensor(t.name(), t.type(), t.shape(), copy);
        });
    }

    private static String failedPass(Path model) {
        try (ModelFile file = ModelFile.open(model);
             LoadedModel m = new CpuBackend().load(file, LoadOptions.defaults().withThreads(1))) {
            PagedKvCache tables = new PagedKvCache(16, 4);
            try (KvCache kv = m.createKvCache(tables)) {
                int seq = tables.createSequence();
                tables.reserve(seq, 3);
                return assertThrows(NonFiniteOutputException.class,
                        () -> m.forward(Batch.of(seq, 0, new int[] {1, 300, 301}, true), kv)).getMessage();
            }
        }
    }

    @Test
    void aNaNInALayersNormIsReportedAtThatLayer() {
        String m = failedPass(withNaN("blk.1.attn_norm.weight"));
        assertTrue(m.contains("kjv-draft") && m.contains("layer 1 (blk.1.*)"), m);
    }

    @Test
    void aNaNInTheOutputNormIsReportedAtTheOutput() {
        String m = failedPass(withNaN("output_norm.weight"));
        assertTrue(m.contains("output logits") && m.contains("output_norm.weight"), m);
    }
}
