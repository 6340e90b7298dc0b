package dev.tandem.fuzz;

import dev.tandem.forge.Forge;
import dev.tandem.forge.ForgeSpec;
import dev.tandem.forge.ForgeType;
import dev.tandem.model.Architecture;
import dev.tandem.testing.SharedData;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Seeded, bounded fuzzing of GGUF files (issue 14): structured mutations ({@link GgufMutator}) of two real
 * models: the bundled KJV draft (Q8_0, written by llama.cpp's converter) and a forged Qwen2 (Q4_K_M, biases,
 * tied head, Llama 3 RoPE factors). Every case must be refused with a named error or load and generate
 * ({@link ModelLoadOracle}), within {@link FuzzRun#CASE_BOUND}; the regression corpus replays the seeds of
 * cases that once failed.
 */
class GgufFuzzTest {
    @TempDir static Path tmp;

    private static byte[] kjvDraft, forgedQwen;

    @BeforeAll
    static void seeds() throws IOException {
        kjvDraft = Files.readAllBytes(SharedData.kjv("kjv-draft-q8_0.gguf"));
        Path forged = tmp.resolve("forged-qwen2.gguf");
        Forge.write(new ForgeSpec(Architecture.QWEN2, 512, 256, 2, 4, 2, 64, 512, 256, ForgeType.Q4_K_M, true, 10000f, 1, 1f,
                0, null, 8f), forged);
        forgedQwen = Files.readAllBytes(forged);
    }

    private static FuzzRun.Case gguf(GgufMutator mutator, long seed, String name) {
        GgufMutator.Case c = mutator.mutate(seed);
        return new FuzzRun.Case() {
            @Override public String description() { return c.description(); }

            @Override public ModelLoadOracle.Outcome run() {
                Path file = FuzzRun.freshFolder(tmp.resolve("case-" + name)).resolve("fuzzed.gguf");
                try {
                    Files.write(file, c.bytes());
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
                return ModelLoadOracle.run(file);
            }
        };
    }

    @Test
    void bothSeedsLoadAndGenerateUnmutated() throws IOException {
        for (byte[] seed : new byte[][] {kjvDraft, forgedQwen}) {
            Path p = FuzzRun.freshFolder(tmp.resolve("unmutated")).resolve("seed.gguf");
            Files.write(p, seed);
            assertEquals(ModelLoadOracle.Outcome.GENERATED, ModelLoadOracle.run(p));
        }
    }

    @Test
    void mutatedKjvDraftsEndInANamedErrorOrAGeneration() {
        GgufMutator mutator = new GgufMutator(kjvDraft);
        FuzzRun.Totals t = FuzzRun.run("gguf-kjv", FuzzRun.seed(14_000), FuzzRun.cases(1200), s -> gguf(mutator, s, "kjv"));
        assertTrue(t.refused() > 0 && t.generated() > 0, "the mutations should both break and spare the file: " + t);
    }

    @Test
    void mutatedForgedQwenModelsEndInANamedErrorOrAGeneration() {
        GgufMutator mutator = new GgufMutator(forgedQwen);
        FuzzRun.Totals t = FuzzRun.run("gguf-qwen2", FuzzRun.seed(14_000_000), FuzzRun.cases(1200), s -> gguf(mutator, s, "qwen"));
        assertTrue(t.refused() > 0 && t.generated() > 0, "the mutations should both break and spare the file: " + t);
    }

    /** Seeds of cases that once failed, with what they did; replayed on every run. */
    @ParameterizedTest(name = "kjv case seed {0}")
    @ValueSource(longs = {14_000})
    void onceFailingKjvCases(long seed) {
        GgufMutator mutator = new GgufMutator(kjvDraft);
        FuzzRun.run("gguf-kjv-corpus", seed, 1, s -> gguf(mutator, s, "kjv-corpus"));
    }
}
