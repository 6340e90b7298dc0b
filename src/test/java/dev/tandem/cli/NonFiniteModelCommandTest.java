package dev.tandem.cli;

import dev.tandem.model.Tensor;
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
 * Issue 14, defect 5, as a user meets it: generating with min-p from a model whose weights hold NaN ends in one
 * line naming the model and the layer, exit code 1, where it used to end in
 * {@code internal error: ArrayIndexOutOfBoundsException: Index -1}.
 */
class NonFiniteModelCommandTest {
    @TempDir Path tmp;

    @Test
    void generatingFromNaNWeightsIsOneLineNamingTheLayer() {
        Path model = GgufCopy.of(SharedData.kjv("kjv-draft-q8_0.gguf"), tmp.resolve("nan.gguf"), w -> {}, t -> {
            if (!t.name().equals("blk.2.ffn_norm.weight")) return t;
            MemorySegment copy = Arena.ofAuto().allocate(t.data().byteSize());
            copy.copyFrom(t.data());
            for (long i = 0; i < copy.byteSize(); i += 4) copy.set(ValueLayout.JAVA_FLOAT_UNALIGNED, i, Float.NaN);
            return new Tensor(t.name(), t.type(), t.shape(), copy);
        });
        CliRun run = CliRun.of("generate", "--backend", "cpu", "-m", model.toString(), "-p", "In the beginning", "-n", "4",
                "--temperature", "0.8", "--min-p", "0.05", "--seed", "1");
        assertEquals(1, run.exitCode(), run.err());
        assertTrue(run.failedWithOneLine(), run.err());
        assertTrue(run.err().contains("kjv-draft") && run.err().contains("layer 2") && !run.err().contains("internal error"), run.err());
    }
}
