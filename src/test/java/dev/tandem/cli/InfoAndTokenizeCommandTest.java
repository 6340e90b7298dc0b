package dev.tandem.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.testing.ReferenceRecords;
import dev.tandem.testing.SharedData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class InfoAndTokenizeCommandTest {
    @TempDir Path tmp;

    @Test
    void infoDescribesAGgufModelAsJson() throws IOException {
        CliRun run = CliRun.of("info", "--model", SharedData.kjv("kjv-main-q8_0.gguf").toString(), "--json");
        assertEquals(0, run.exitCode(), run.err());
        JsonNode info = new ObjectMapper().readTree(run.out());
        assertEquals("llama", info.get("architecture").asText());
        assertEquals(8, info.get("layers").asInt());
        assertEquals(58, info.get("tensor_types").get("Q8_0").asInt());
        assertEquals(1024, info.get("context_length").asInt());
        assertEquals("sentencepiece", info.get("tokenizer").get("kind").asText());
    }

    @Test
    void infoReadsAHuggingFaceFolder() throws IOException {
        CliRun run = CliRun.of("info", "--model", SharedData.root().resolve("models/variants/kjv-qwen2-hf").toString(), "--json");
        assertEquals(0, run.exitCode(), run.err());
        JsonNode info = new ObjectMapper().readTree(run.out());
        assertEquals("qwen2", info.get("architecture").asText());
        assertTrue(info.get("qkv_bias").asBoolean());
        assertTrue(info.get("tied_embeddings").asBoolean());
    }

    @Test
    void tokenizeReproducesTheReferenceInAllFourModes() throws IOException {
        // The first strings of the Llama 3 reference, each in its four (add_bos, parse_special) modes.
        List<JsonNode> records = ReferenceRecords.jsonl(SharedData.reference("tokenize/llama3.jsonl"));
        String vocab = SharedData.root().resolve("models/tokenizers/llama3/vocab.gguf").toString();
        for (JsonNode r : records.subList(0, 40)) {
            String text = r.get("text").asText();
            if (text.startsWith("-")) continue; // would read as a flag; the tokenizer tests cover it
            List<String> args = new java.util.ArrayList<>(List.of("tokenize", "--model", vocab, "--text=" + text, "--json"));
            if (!r.get("add_bos").asBoolean()) args.add("--no-bos");
            if (!r.get("parse_special").asBoolean()) args.add("--no-parse-special");
            CliRun run = CliRun.of(args.toArray(String[]::new));
            assertEquals(0, run.exitCode(), run.err());
            int[] got = ReferenceRecords.ints(new ObjectMapper().readTree(run.out()).get("tokens"));
            assertArrayEquals(ReferenceRecords.ints(r.get("tokens")), got, "text " + Arrays.toString(text.codePoints().toArray()));
        }
    }

    // ---- bad input: one line, non-zero exit, the file named ---------------------------------------------

    private Path copyOfMainWith(java.util.function.UnaryOperator<byte[]> change) throws IOException {
        byte[] bytes = Files.readAllBytes(SharedData.kjv("kjv-main-q8_0.gguf"));
        Path p = tmp.resolve("broken.gguf");
        Files.write(p, change.apply(bytes));
        return p;
    }

    @Test
    void badMagic() throws IOException {
        Path p = copyOfMainWith(b -> { b[0] = 'X'; return b; });
        CliRun run = CliRun.of("info", "--model", p.toString());
        assertTrue(run.failedWithOneLine(), run.err());
        assertEquals(1, run.exitCode());
        assertTrue(run.err().contains(p.toString()) && run.err().contains("bad magic"), run.err());
    }

    @Test
    void truncatedFile() throws IOException {
        Path p = copyOfMainWith(b -> Arrays.copyOf(b, 300_000));
        CliRun run = CliRun.of("info", "--model", p.toString());
        assertTrue(run.failedWithOneLine(), run.err());
        assertTrue(run.err().contains("past the end of the file"), run.err());
    }

    @Test
    void unsupportedVersion() throws IOException {
        Path p = copyOfMainWith(b -> { b[4] = 9; return b; });
        CliRun run = CliRun.of("info", "--model", p.toString());
        assertTrue(run.failedWithOneLine() && run.err().contains("unsupported GGUF version 9"), run.err());
    }

    @Test
    void unsupportedArchitecture() throws IOException {
        // "general.architecture" = "llama" -> "gemma" (same length), in the metadata
        Path p = copyOfMainWith(b -> {
            String s = new String(b, 0, 2000, java.nio.charset.StandardCharsets.ISO_8859_1);
            int at = s.indexOf("llama", s.indexOf("general.architecture"));
            System.arraycopy("gemma".getBytes(), 0, b, at, 5);
            return b;
        });
        CliRun run = CliRun.of("info", "--model", p.toString());
        assertTrue(run.failedWithOneLine() && run.err().contains("unsupported architecture 'gemma'"), run.err());
    }

    @Test
    void missingRequiredKey() throws IOException {
        // Rename "llama.block_count" so that it is no longer found.
        Path p = copyOfMainWith(b -> {
            String s = new String(b, 0, 4000, java.nio.charset.StandardCharsets.ISO_8859_1);
            int at = s.indexOf("llama.block_count");
            b[at + 6] = 'X';
            return b;
        });
        CliRun run = CliRun.of("info", "--model", p.toString());
        assertTrue(run.failedWithOneLine() && run.err().contains("missing required metadata key 'llama.block_count'"), run.err());
    }

    @Test
    void shapeMismatch() throws IOException {
        // Claim 9 layers of feed-forward width 768 -> 769: the first ffn tensor no longer fits.
        Path p = copyOfMainWith(b -> {
            String s = new String(b, 0, 4000, java.nio.charset.StandardCharsets.ISO_8859_1);
            int at = s.indexOf("llama.feed_forward_length") + "llama.feed_forward_length".length() + 4;
            b[at] = (byte) (b[at] + 1);
            return b;
        });
        CliRun run = CliRun.of("info", "--model", p.toString());
        assertTrue(run.failedWithOneLine() && run.err().contains("has shape") && run.err().contains("needs"), run.err());
    }

    @Test
    void huggingFaceFolderMissingAFile() throws IOException {
        Path dir = tmp.resolve("hf");
        Files.createDirectories(dir);
        Files.copy(SharedData.kjv("draft-hf/config.json"), dir.resolve("config.json"));
        CliRun run = CliRun.of("info", "--model", dir.toString());
        assertTrue(run.failedWithOneLine() && run.err().contains("neither model.safetensors nor model.safetensors.index.json"), run.err());
        Files.delete(dir.resolve("config.json"));
        Files.copy(SharedData.kjv("draft-hf/model.safetensors"), dir.resolve("model.safetensors"));
        run = CliRun.of("info", "--model", dir.toString());
        assertTrue(run.failedWithOneLine() && run.err().contains("missing config.json"), run.err());
    }

    @Test
    void unknownFlagIsAUsageError() {
        CliRun run = CliRun.of("info", "--frobnicate");
        assertEquals(2, run.exitCode());
        assertTrue(run.failedWithOneLine());
    }
}
