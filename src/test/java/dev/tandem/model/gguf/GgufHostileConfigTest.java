package dev.tandem.model.gguf;

import dev.tandem.model.ModelFile;
import dev.tandem.model.ModelFormatException;
import dev.tandem.model.ModelLimits;
import dev.tandem.testing.GgufCopy;
import dev.tandem.testing.SharedData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Issue 14, defects 2, 3 and 4 (GGUF metadata): the hyperparameters of a real model (the KJV draft: 3 layers,
 * hidden 128, 2 heads over 1 K/V head of 64, vocabulary 4,096, context 1,024) with one value made hostile. Each
 * is refused when the file opens, naming the key, the value and the limit, instead of being narrowed, or loaded
 * and then sizing an allocation, or loaded and generating garbage.
 */
class GgufHostileConfigTest {
    @TempDir Path tmp;

    private static final Path DRAFT = SharedData.kjv("kjv-draft-q8_0.gguf");

    private Path copy(Consumer<GgufWriter> edit) {
        return GgufCopy.of(DRAFT, tmp.resolve("edited.gguf"), edit);
    }

    private static String refused(Path p) {
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> ModelFile.open(p).close());
        assertEquals(p, e.file());
        return e.getMessage();
    }

    private static void assertMentions(String message, String... parts) {
        for (String part : parts) assertTrue(message.contains(part), "'" + part + "' missing from: " + message);
    }

    @Test
    void theUneditedCopyLoads() {
        try (ModelFile m = ModelFile.open(copy(w -> {}))) {
            assertEquals(3, m.config().layers());
        }
    }

    @ParameterizedTest(name = "{0} = {1}")
    @CsvSource({
            "llama.context_length, 2147483647",          // defect 2: new float[context] per thread
            "llama.attention.head_count_kv, 4294967298",  // defect 3: 2^32+2 was read as 2
            "llama.attention.key_length, 4294967360",     // 2^32+64 was read as 64
            "llama.rope.dimension_count, 4294967360",
            "llama.vocab_size, 4294971392",               // 2^32+4096 was read as 4096
            "llama.block_count, 0",                       // defect 4: zero layers loaded and generated
            "llama.embedding_length, 4294967424",
            "llama.feed_forward_length, -1",
    })
    void anOutOfRangeSizeIsRefusedByKeyValueAndLimit(String key, long value) {
        String m = refused(copy(w -> w.put(key, GgufValueType.INT64, value)));
        assertMentions(m, "'" + key + "'", String.valueOf(value), "allowed");
    }

    @Test
    void theContextLimitIsStatedInTheMessage() {
        String m = refused(copy(w -> w.putUInt32("llama.context_length", Integer.MAX_VALUE)));
        assertMentions(m, String.valueOf(ModelLimits.MAX_CONTEXT));
    }

    @Test
    void aFractionalLayerCountIsRefusedInsteadOfTruncated() {
        assertMentions(refused(copy(w -> w.putFloat32("llama.block_count", 3.5f))), "'llama.block_count' should be an integer, found 3.5");
    }

    @Test
    void aBlockCountBelowTheLayersPresentIsRefused() {
        String m = refused(copy(w -> w.putUInt32("llama.block_count", 2)));
        assertMentions(m, "'llama.block_count' is 2", "blk.2.");
    }

    @Test
    void aTokenizerOf1000TokensAgainstA4096RowEmbeddingIsRefused() {
        String m = refused(copy(w -> {
            try (GgufFile f = GgufFile.open(DRAFT)) {
                w.putArray("tokenizer.ggml.tokens", GgufWriter.ArrayValue.ofStrings(Arrays.copyOf(f.getStringArray("tokenizer.ggml.tokens"), 1000)));
            }
        }));
        assertMentions(m, "'tokenizer.ggml.tokens' has 1000 tokens", "4096");
    }

    @ParameterizedTest(name = "rms_eps = {0}")
    @CsvSource({"NaN", "Infinity", "0", "-1e-5"})
    void anRmsEpsilonThatIsNotAPositiveFiniteNumberIsRefused(float eps) {
        String m = refused(copy(w -> w.putFloat32("llama.attention.layer_norm_rms_epsilon", eps)));
        assertMentions(m, "'llama.attention.layer_norm_rms_epsilon'", String.valueOf(eps));
    }

    @Test
    void aRopeBaseOfNaNIsRefused() {
        assertMentions(refused(copy(w -> w.putFloat32("llama.rope.freq_base", Float.NaN))), "'llama.rope.freq_base'", "NaN");
    }
}
