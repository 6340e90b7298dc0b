package dev.tandem.model.hf;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tandem.model.ModelFile;
import dev.tandem.model.ModelFormatException;
import dev.tandem.testing.SharedData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Consumer;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Issue 14, defects 2 and 4 (Hugging Face folders): the KJV draft's folder (3 layers, hidden 128, vocabulary
 * 4,096, BF16 safetensors) with one hostile edit to {@code config.json}, the safetensors header or a shard
 * index. Numbers are JSON integers or numbers as the key needs, in range; never a fraction truncated, a string
 * parsed or replaced by a default; shards are files inside the folder.
 */
class HfHostileFolderTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir Path tmp;

    /** A copy of the KJV draft's folder. */
    private Path folder() {
        Path dir = tmp.resolve("draft-hf");
        try (Stream<Path> files = Files.list(SharedData.kjv("draft-hf"))) {
            Files.createDirectories(dir);
            for (Path f : files.toList()) Files.copy(f, dir.resolve(f.getFileName()));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return dir;
    }

    private Path withConfig(Consumer<ObjectNode> edit) throws IOException {
        Path dir = folder();
        ObjectNode config = (ObjectNode) JSON.readTree(dir.resolve("config.json").toFile());
        edit.accept(config);
        Files.delete(dir.resolve("config.json"));
        JSON.writeValue(dir.resolve("config.json").toFile(), config);
        return dir;
    }

    private static String refused(Path p) {
        return assertThrows(ModelFormatException.class, () -> ModelFile.open(p).close()).getMessage();
    }

    private static void assertMentions(String message, String... parts) {
        for (String part : parts) assertTrue(message.contains(part), "'" + part + "' missing from: " + message);
    }

    @Test
    void theUneditedCopyLoads() {
        try (ModelFile m = ModelFile.open(folder())) {
            assertEquals(4096, m.config().vocabularySize());
        }
    }

    // ---- defect 2: sizes that would be allocated ---------------------------------------------------------------

    @Test
    void maxPositionEmbeddingsOf2To31Minus1IsRefused() throws IOException {
        assertMentions(refused(withConfig(c -> c.put("max_position_embeddings", Integer.MAX_VALUE))),
                "'max_position_embeddings' is 2147483647", "allowed: 1 to 1048576");
    }

    @Test
    void aHeadDimOf2To31Minus1WithRopeScalingIsRefusedBeforeTheFrequenciesAreAllocated() throws IOException {
        assertMentions(refused(withConfig(c -> {
            c.put("head_dim", Integer.MAX_VALUE);
            c.putObject("rope_scaling").put("rope_type", "llama3").put("factor", 8.0);
        })), "'head_dim' is 2147483647", "allowed: 1 to 1024");
    }

    @Test
    void aVocabularyOf2e9IsRefused() throws IOException {
        assertMentions(refused(withConfig(c -> c.put("vocab_size", 2_000_000_000))), "'vocab_size' is 2000000000");
    }

    // ---- defect 4: numbers that are not what the key needs -----------------------------------------------------

    @Test
    void aFractionalLayerCountIsRefusedInsteadOfTruncated() throws IOException {
        assertMentions(refused(withConfig(c -> c.put("num_hidden_layers", 3.5))), "'num_hidden_layers' should be an integer, found 3.5");
    }

    @Test
    void aFractionalHiddenSizeIsRefusedInsteadOfTruncated() throws IOException {
        assertMentions(refused(withConfig(c -> c.put("hidden_size", 128.5))), "'hidden_size' should be an integer, found 128.5");
    }

    @Test
    void aStringForANumericKeyIsRefusedInsteadOfReplacedByADefault() throws IOException {
        assertMentions(refused(withConfig(c -> c.put("rms_norm_eps", "tiny"))), "'rms_norm_eps' should be a number");
    }

    @Test
    void aStringForAnIntegerKeyIsRefusedInsteadOfParsed() throws IOException {
        assertMentions(refused(withConfig(c -> c.put("num_key_value_heads", "2"))), "'num_key_value_heads' should be an integer");
    }

    @Test
    void aLayerCountBelowTheLayersPresentIsRefused() throws IOException {
        assertMentions(refused(withConfig(c -> c.put("num_hidden_layers", 2))), "'num_hidden_layers' is 2", "blk.2.");
    }

    @Test
    void safetensorsShapesGivenAsStringsAreRefused() throws IOException {
        Path dir = folder();
        rewriteHeader(dir.resolve("model.safetensors"), "\"shape\":[4096,128]", "\"shape\":[\"4096\",\"128\"]");
        assertMentions(refused(dir), "'model.embed_tokens.weight'", "'shape' entry \"4096\"");
    }

    @Test
    void safetensorsTensorsSharingBytesAreRefused() throws IOException {
        Path dir = folder();
        // The first layer's input norm (256 bytes at 1048576) moved onto the embedding's first bytes.
        rewriteHeader(dir.resolve("model.safetensors"), "\"data_offsets\":[1048576,1048832]", "\"data_offsets\":[0,256]");
        assertMentions(refused(dir), "overlap");
    }

    /** Replaces text in a safetensors header (offsets count from the data's start, so the data stays valid). */
    private static void rewriteHeader(Path file, String from, String to) throws IOException {
        byte[] all = Files.readAllBytes(file);
        int length = (int) ByteBuffer.wrap(all, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        String header = new String(all, 8, length, StandardCharsets.UTF_8);
        assertTrue(header.contains(from), from);
        byte[] edited = header.replace(from, to).getBytes(StandardCharsets.UTF_8);
        ByteBuffer out = ByteBuffer.allocate(8 + edited.length + all.length - 8 - length).order(ByteOrder.LITTLE_ENDIAN);
        out.putLong(edited.length).put(edited).put(all, 8 + length, all.length - 8 - length);
        Files.delete(file);
        Files.write(file, out.array());
    }

    // ---- defect 4: shards stay inside the folder ---------------------------------------------------------------

    /** The draft's folder with its weights moved next to it and an index naming them as {@code shardName}. */
    private Path sharded(String shardName) throws IOException {
        Path dir = folder();
        Files.move(dir.resolve("model.safetensors"), tmp.resolve("outside.safetensors"));
        writeIndex(dir, shardName);
        return dir;
    }

    private static void writeIndex(Path dir, String shardName) throws IOException {
        Files.writeString(dir.resolve("model.safetensors.index.json"),
                "{\"weight_map\":{\"model.embed_tokens.weight\":" + JSON.writeValueAsString(shardName) + "}}");
    }

    @Test
    void aShardIndexPointingUpAndOutOfTheFolderIsRefused() throws IOException {
        assertMentions(refused(sharded("../outside.safetensors")), "'../outside.safetensors'", "outside the model folder");
    }

    @Test
    void aShardIndexNamingAnAbsolutePathIsRefused() throws IOException {
        assertMentions(refused(sharded(tmp.resolve("outside.safetensors").toString())), "outside.safetensors'", "outside the model folder");
    }

    @Test
    void aShardIndexNamingEtcPasswdIsRefusedWithoutOpeningIt() throws IOException {
        Path dir = folder();
        Files.delete(dir.resolve("model.safetensors"));
        writeIndex(dir, "/etc/passwd");
        assertMentions(refused(dir), "'/etc/passwd'", "outside the model folder");
    }

    @Test
    void aShardInASubfolderIsAccepted() throws IOException {
        Path dir = folder();
        Files.createDirectories(dir.resolve("shards"));
        Files.move(dir.resolve("model.safetensors"), dir.resolve("shards/one.safetensors"));
        writeIndex(dir, "shards/../shards/one.safetensors");
        try (ModelFile m = ModelFile.open(dir)) {
            assertEquals(3, m.config().layers());
        }
    }
}
