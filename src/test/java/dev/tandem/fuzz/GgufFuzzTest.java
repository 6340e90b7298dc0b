package dev.tandem.fuzz;

import dev.tandem.forge.Forge;
import dev.tandem.forge.ForgeSpec;
import dev.tandem.forge.ForgeType;
import dev.tandem.model.Architecture;
import dev.tandem.model.gguf.GgufWriter;
import dev.tandem.testing.GgufCopy;
import dev.tandem.testing.SharedData;
import dev.tandem.tokenizer.SmallBpeTokenizerJson;
import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Seeded, bounded fuzzing of GGUF files (issue 14): structured mutations ({@link GgufMutator}) of two real
 * models: the bundled KJV draft (Q8_0, written by llama.cpp's converter, SentencePiece vocabulary), a forged
 * Qwen2 (Q4_K_M, biases, tied head, Llama 3 RoPE factors) and the same with a byte-level BPE vocabulary. Every case must be refused with a named error or load and generate
 * ({@link ModelLoadOracle}), within {@link FuzzRun#CASE_BOUND}; the regression corpus replays the seeds of
 * cases that once failed.
 */
class GgufFuzzTest {
    @TempDir static Path tmp;

    private static byte[] kjvDraft, forgedQwen, forgedBpe;

    @BeforeAll
    static void seeds() throws IOException {
        kjvDraft = Files.readAllBytes(SharedData.kjv("kjv-draft-q8_0.gguf"));
        Path forged = tmp.resolve("forged-qwen2.gguf");
        Forge.write(new ForgeSpec(Architecture.QWEN2, 512, 256, 2, 4, 2, 64, 512, 256, ForgeType.Q4_K_M, true, 10000f, 1, 1f,
                0, null, 8f), forged);
        forgedQwen = Files.readAllBytes(forged);
        forgedBpe = Files.readAllBytes(withBpeTokenizer(forged, tmp.resolve("forged-qwen2-bpe.gguf")));
    }

    /**
     * The forged Qwen2 with a byte-level BPE vocabulary (GGUF {@code gpt2} model, Qwen2 pre-tokenizer, merges)
     * in place of the synthetic SentencePiece one: the tokens and merges of {@link SmallBpeTokenizerJson},
     * padded to the model's 512 rows.
     */
    private static Path withBpeTokenizer(Path forged, Path out) {
        JsonNode json = SmallBpeTokenizerJson.tree();
        String[] tokens = new String[512];
        json.path("model").path("vocab").properties().forEach(e -> tokens[e.getValue().asInt()] = e.getKey());
        for (JsonNode added : json.path("added_tokens")) tokens[added.path("id").asInt()] = added.path("content").asText();
        int[] types = new int[512];
        for (int i = 0; i < tokens.length; i++) {
            types[i] = tokens[i] == null ? 5 : tokens[i].startsWith("<|") ? 3 : 1;
            if (tokens[i] == null) tokens[i] = "[PAD" + i + "]";
        }
        List<String> merges = new ArrayList<>();
        json.path("model").path("merges").forEach(m -> merges.add(m.asText()));
        return GgufCopy.of(forged, out, w -> {
            w.remove("tokenizer.ggml.scores");
            w.putString("tokenizer.ggml.model", "gpt2").putString("tokenizer.ggml.pre", "qwen2")
                    .putArray("tokenizer.ggml.tokens", GgufWriter.ArrayValue.ofStrings(tokens))
                    .putArray("tokenizer.ggml.token_type", GgufWriter.ArrayValue.ofInt32(types))
                    .putArray("tokenizer.ggml.merges", GgufWriter.ArrayValue.ofStrings(merges.toArray(String[]::new)))
                    .putUInt32("tokenizer.ggml.bos_token_id", 264).putUInt32("tokenizer.ggml.eos_token_id", 265)
                    .putBool("tokenizer.ggml.add_bos_token", false);
        });
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
        for (byte[] seed : new byte[][] {kjvDraft, forgedQwen, forgedBpe}) {
            Path p = FuzzRun.freshFolder(tmp.resolve("unmutated")).resolve("seed.gguf");
            Files.write(p, seed);
            assertEquals(ModelLoadOracle.Outcome.GENERATED, ModelLoadOracle.run(p));
        }
    }

    @Test
    void mutatedKjvDraftsEndInANamedErrorOrAGeneration() {
        GgufMutator mutator = new GgufMutator(kjvDraft);
        FuzzRun.Totals t = FuzzRun.run("gguf-kjv", FuzzRun.seed(14_000), FuzzRun.cases(1000), s -> gguf(mutator, s, "kjv"));
        assertTrue(t.refused() > 0 && t.generated() > 0, "the mutations should both break and spare the file: " + t);
    }

    @Test
    void mutatedForgedQwenModelsEndInANamedErrorOrAGeneration() {
        GgufMutator mutator = new GgufMutator(forgedQwen);
        FuzzRun.Totals t = FuzzRun.run("gguf-qwen2", FuzzRun.seed(14_000_000), FuzzRun.cases(800), s -> gguf(mutator, s, "qwen"));
        assertTrue(t.refused() > 0 && t.generated() > 0, "the mutations should both break and spare the file: " + t);
    }

    @Test
    void mutatedByteLevelBpeModelsEndInANamedErrorOrAGeneration() {
        GgufMutator mutator = new GgufMutator(forgedBpe);
        FuzzRun.Totals t = FuzzRun.run("gguf-bpe", FuzzRun.seed(14_500_000), FuzzRun.cases(400), s -> gguf(mutator, s, "bpe"));
        assertTrue(t.refused() > 0 && t.generated() > 0, "the mutations should both break and spare the file: " + t);
    }

    /**
     * Seeds of cases that failed before issue 14 (found by this fuzzer in survey mode against the old parser),
     * with what they did and how they failed; replayed on every run.
     */
    @ParameterizedTest(name = "kjv case seed {0}")
    @ValueSource(longs = {
            14_010,     // offset of blk.1.ffn_gate.weight := that of blk.2.attn_k.weight: NaN logits, ArrayIndexOutOfBoundsException -1
            14_083,     // type of blk.2.attn_k.weight := Q4_0 (was Q8_0): garbage weights, ArrayIndexOutOfBoundsException -1
            14_119,     // dimension 1 of blk.1.attn_v.weight := 2^63-1: ArithmeticException long overflow
            14_315,     // llama.context_length := 0: IllegalArgumentException from the K/V cache
            14_454,     // offset of output_norm.weight := 2^63-16: IndexOutOfBoundsException on the mapping
            14_683,     // general.size_label := arrays nested 20,000 deep: StackOverflowError
            14_729,     // offset of token_embd.weight := 64 (overlapping the header's neighbour tensor): ArrayIndexOutOfBoundsException -1
            14_773,     // offset of output_norm.weight := 8 (unaligned): ArrayIndexOutOfBoundsException -1
            14_780,     // llama.rope.freq_base := FLOAT32 NaN: ArrayIndexOutOfBoundsException -1
    })
    void onceFailingKjvCases(long seed) {
        GgufMutator mutator = new GgufMutator(kjvDraft);
        FuzzRun.run("gguf-kjv-corpus", seed, 1, s -> gguf(mutator, s, "kjv-corpus"));
    }

    @ParameterizedTest(name = "qwen2 case seed {0}")
    @ValueSource(longs = {
            14_000_232, // qwen2.block_count := UINT64 -1: NegativeArraySizeException
            14_000_964, // dimension 1 of blk.1.ffn_up.weight := 5.0e18: ArithmeticException
            14_001_071, // offset of blk.1.attn_norm.weight := 2^63-16: IndexOutOfBoundsException on the mapping
            14_000_148, // offset of output_norm.weight := that of blk.1.ffn_gate.weight: ArrayIndexOutOfBoundsException -1
    })
    void onceFailingQwenCases(long seed) {
        GgufMutator mutator = new GgufMutator(forgedQwen);
        FuzzRun.run("gguf-qwen2-corpus", seed, 1, s -> gguf(mutator, s, "qwen-corpus"));
    }
}
