package dev.tandem.fuzz;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tandem.testing.SharedData;
import dev.tandem.tokenizer.SmallBpeTokenizerJson;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Seeded, bounded fuzzing of Hugging Face folders (issue 14): structured mutations ({@link JsonMutator}) of
 * {@code config.json}, the safetensors header (and its length field, and truncation of the file),
 * {@code tokenizer.json} and a shard index, on four variants of the KJV draft's folder: as shipped
 * (SentencePiece {@code tokenizer.model}), with a byte-level BPE {@code tokenizer.json} instead, with Llama 3
 * RoPE scaling, and sharded through {@code model.safetensors.index.json}. Every case must be refused with a
 * named error or load and generate ({@link ModelLoadOracle}) within {@link FuzzRun#CASE_BOUND}.
 */
class HfFolderFuzzTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String SHARD = "model-00001-of-00001.safetensors";
    private static final List<String> CONFIG_KEYS = List.of("head_dim", "num_key_value_heads", "rope_scaling",
            "max_position_embeddings", "rope_theta", "rms_norm_eps", "vocab_size", "num_hidden_layers", "model_type");

    @TempDir static Path tmp;

    /** The four variants, by name: each a folder of files that cases link to rather than copy. */
    private static Map<String, Path> bases;

    @BeforeAll
    static void bases() throws IOException {
        Path shipped = copyOf(SharedData.kjv("draft-hf"), tmp.resolve("base-sp"));
        Path bpe = copyOf(shipped, tmp.resolve("base-bpe"));
        Files.delete(bpe.resolve("tokenizer.model"));
        Files.delete(bpe.resolve("added_tokens.json"));
        Files.writeString(bpe.resolve("tokenizer.json"), JsonMutator.write(SmallBpeTokenizerJson.tree()));
        Path rope = copyOf(shipped, tmp.resolve("base-rope"));
        ObjectNode config = (ObjectNode) JSON.readTree(rope.resolve("config.json").toFile());
        config.putObject("rope_scaling").put("rope_type", "llama3").put("factor", 8.0).put("low_freq_factor", 1.0)
                .put("high_freq_factor", 4.0).put("original_max_position_embeddings", 512);
        replace(rope.resolve("config.json"), JsonMutator.write(config).getBytes(StandardCharsets.UTF_8));
        Path sharded = copyOf(shipped, tmp.resolve("base-sharded"));
        Files.move(sharded.resolve("model.safetensors"), sharded.resolve(SHARD));
        ObjectNode index = JSON.createObjectNode();
        index.putObject("metadata").put("total_size", Files.size(sharded.resolve(SHARD)));
        ObjectNode map = index.putObject("weight_map");
        header(Files.readAllBytes(sharded.resolve(SHARD))).fieldNames().forEachRemaining(n -> {
            if (!n.equals("__metadata__")) map.put(n, SHARD);
        });
        Files.writeString(sharded.resolve("model.safetensors.index.json"), JsonMutator.write(index));
        bases = Map.of("sp", shipped, "bpe", bpe, "rope", rope, "sharded", sharded);
    }

    private static Path copyOf(Path from, Path to) throws IOException {
        Files.createDirectories(to);
        try (Stream<Path> files = Files.list(from)) {
            for (Path f : files.toList()) Files.copy(f, to.resolve(f.getFileName()));
        }
        return to;
    }

    private static void replace(Path file, byte[] bytes) throws IOException {
        Files.deleteIfExists(file);     // never write through a link into a base folder
        Files.write(file, bytes);
    }

    private static JsonNode header(byte[] safetensors) throws IOException {
        int length = (int) ByteBuffer.wrap(safetensors, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        return JSON.readTree(Arrays.copyOfRange(safetensors, 8, 8 + length));
    }

    /** A case: one base folder, one file of it mutated; the others linked. */
    private record Mutation(String base, String file, byte[] bytes, String description) {}

    static Mutation mutate(long seed) {
        try {
            SplittableRandom r = new SplittableRandom(seed);
            String base = List.of("sp", "bpe", "rope", "sharded").get(r.nextInt(4));
            Path dir = bases.get(base);
            int target = r.nextInt(100);
            if (base.equals("bpe") && target < 50 || base.equals("sharded") && target < 35) {
                String file = base.equals("bpe") ? "tokenizer.json" : "model.safetensors.index.json";
                JsonMutator.Result m = JsonMutator.mutate(JSON.readTree(dir.resolve(file).toFile()), r, List.of("added_tokens", "weight_map"));
                return new Mutation(base, file, m.text().getBytes(StandardCharsets.UTF_8), base + " " + file + ": " + m.description());
            }
            if (target < 70) {
                JsonMutator.Result m = JsonMutator.mutate(JSON.readTree(dir.resolve("config.json").toFile()), r, CONFIG_KEYS);
                return new Mutation(base, "config.json", m.text().getBytes(StandardCharsets.UTF_8), base + " config.json: " + m.description());
            }
            String file = base.equals("sharded") ? SHARD : "model.safetensors";
            byte[] original = Files.readAllBytes(dir.resolve(file));
            int length = (int) ByteBuffer.wrap(original, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
            if (target < 90) {
                JsonMutator.Result m = JsonMutator.mutate(header(original), r, List.of("__metadata__"));
                byte[] h = m.text().getBytes(StandardCharsets.UTF_8);
                ByteBuffer out = ByteBuffer.allocate(8 + h.length + original.length - 8 - length).order(ByteOrder.LITTLE_ENDIAN);
                out.putLong(h.length).put(h).put(original, 8 + length, original.length - 8 - length);
                return new Mutation(base, file, out.array(), base + " safetensors header: " + m.description());
            }
            if (target < 95) {
                long v = GgufMutator.interesting(r, 8, length, original.length);
                byte[] out = original.clone();
                ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN).putLong(0, v);
                return new Mutation(base, file, out, base + " safetensors header length := " + v);
            }
            int at = r.nextInt(original.length);
            return new Mutation(base, file, Arrays.copyOf(original, at), base + " safetensors truncated to " + at + " bytes");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static FuzzRun.Case hfCase(long seed, String slot) {
        Mutation m = mutate(seed);
        return new FuzzRun.Case() {
            @Override public String description() { return m.description(); }

            @Override public ModelLoadOracle.Outcome run() {
                Path dir = FuzzRun.freshFolder(tmp.resolve("case-" + slot)).resolve("model");
                try {
                    Files.createDirectories(dir);
                    try (Stream<Path> files = Files.list(bases.get(m.base()))) {
                        for (Path f : files.toList()) {
                            if (!f.getFileName().toString().equals(m.file())) Files.createLink(dir.resolve(f.getFileName()), f);
                        }
                    }
                    Files.write(dir.resolve(m.file()), m.bytes());
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
                return ModelLoadOracle.run(dir);
            }
        };
    }

    @Test
    void everyBaseFolderLoadsAndGeneratesUnmutated() {
        for (Path base : bases.values()) assertEquals(ModelLoadOracle.Outcome.GENERATED, ModelLoadOracle.run(base), base.toString());
    }

    @Test
    void mutatedFoldersEndInANamedErrorOrAGeneration() {
        FuzzRun.Totals t = FuzzRun.run("hf", FuzzRun.seed(1_400_000), FuzzRun.cases(1200), s -> hfCase(s, "hf"));
        assertTrue(t.refused() > 0 && t.generated() > 0, "the mutations should both break and spare the folder: " + t);
    }

    /**
     * Seeds of cases that failed before issue 14 (found by this fuzzer in survey mode against the old readers),
     * with what they did and how they failed; replayed on every run.
     */
    @ParameterizedTest(name = "hf case seed {0}")
    @ValueSource(longs = {
            1_400_033,  // config.json max_position_embeddings := 2^31: accepted, then sized the K/V tables
            1_400_037,  // config.json rms_norm_eps := -1: NaN logits, ArrayIndexOutOfBoundsException -1
            1_400_092,  // config.json num_hidden_layers := -1: NegativeArraySizeException
            1_400_322,  // tokenizer.json a vocab id := 2.0E9: OutOfMemoryError
            1_400_588,  // config.json max_position_embeddings := 1e-320: read as 0
            1_400_867,  // tokenizer.json a vocab id := 2^31-1: ArrayIndexOutOfBoundsException
            1_401_196,  // config.json head_dim := 2^31-1 with Llama 3 RoPE scaling: OutOfMemoryError
    })
    void onceFailingCases(long seed) {
        FuzzRun.run("hf-corpus", seed, 1, s -> hfCase(s, "hf-corpus"));
    }
}
