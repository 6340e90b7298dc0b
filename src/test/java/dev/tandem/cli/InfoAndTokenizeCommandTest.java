package dev.tandem.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.testing.ReferenceRecords;
import dev.tandem.testing.SharedData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
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

    // ---- tokenize: text from a file or standard input ----------------------------------------------------

    private static String llama3Vocab() {
        return SharedData.root().resolve("models/tokenizers/llama3/vocab.gguf").toString();
    }

    /** The reference's tokens of {@code text}, BOS added and special tokens parsed. */
    private static int[] referenceTokens(String text) {
        JsonNode record = ReferenceRecords.jsonl(SharedData.reference("tokenize/llama3.jsonl")).stream()
                .filter(r -> r.get("text").asText().equals(text) && r.get("add_bos").asBoolean() && r.get("parse_special").asBoolean())
                .findFirst().orElseThrow();
        return ReferenceRecords.ints(record.get("tokens"));
    }

    private static int[] tokens(CliRun run) throws IOException {
        assertEquals(0, run.exitCode(), run.err());
        return ReferenceRecords.ints(new ObjectMapper().readTree(run.out()).get("tokens"));
    }

    @Test
    void tokenizeReadsTextWithANulByteFromAFileAsTheReferenceTokenizesIt() throws IOException {
        Path file = Files.write(tmp.resolve("nul.txt"), new byte[] {'a', 0, 'b'});
        assertArrayEquals(referenceTokens("a\0b"), tokens(CliRun.of("tokenize", "-m", llama3Vocab(), "--file", file.toString(), "--json")));
    }

    @Test
    void tokenizePrintsControlCharactersEscaped() throws IOException {
        Path file = Files.write(tmp.resolve("nul.txt"), new byte[] {'a', 0, 'b', '\t'});
        CliRun run = CliRun.of("tokenize", "-m", llama3Vocab(), "--file", file.toString(), "--no-bos");
        assertEquals(0, run.exitCode(), run.err());
        assertEquals(List.of("64 -> 'a'", "188 -> '\\x00'", "65 -> 'b'", "197 -> '\\t'"), run.out().lines().map(String::strip).toList());
    }

    @Test
    void tokenizeReadsStandardInputGivenAsDashOrAsFileDash() throws IOException {
        byte[] input = "a\0b".getBytes(StandardCharsets.UTF_8);
        assertArrayEquals(referenceTokens("a\0b"), tokens(CliRun.withInput(input, "tokenize", "-m", llama3Vocab(), "-", "--json")));
        assertArrayEquals(referenceTokens("a\0b"), tokens(CliRun.withInput(input, "tokenize", "-m", llama3Vocab(), "--file", "-", "--json")));
    }

    @Test
    void tokenizeReadsALongDocumentWhole() throws IOException {
        // Lines of letters end in a newline, which the Llama 3 pre-tokenizer always splits off: the document's
        // tokens are the line's tokens once per line, after BOS. Multi-byte characters fall across any buffer size.
        String line = "In the beginning God created the heaven and the earth, Ünïcödé 日本語\n";
        int lines = 16_384; // over 1 MiB, far past what one command-line argument may hold (128 KiB on Linux)
        Path file = Files.writeString(tmp.resolve("long.txt"), line.repeat(lines));
        int[] once = tokens(CliRun.of("tokenize", "-m", llama3Vocab(), "--text=" + line, "--no-bos", "--json"));
        int[] all = tokens(CliRun.of("tokenize", "-m", llama3Vocab(), "--file", file.toString(), "--no-bos", "--json"));
        assertEquals(once.length * lines, all.length);
        for (int i = 0; i < all.length; i++) assertEquals(once[i % once.length], all[i], "token " + i);
    }

    @Test
    void tokenizeRefusesAFileThatIsNotUtf8NamingTheFirstBadByte() throws IOException {
        Path file = Files.write(tmp.resolve("latin1.txt"), "caf\u00e9 au lait".getBytes(StandardCharsets.ISO_8859_1));
        CliRun run = CliRun.of("tokenize", "-m", llama3Vocab(), "--file", file.toString());
        assertTrue(run.failedWithOneLine(), run.err());
        assertEquals(1, run.exitCode());
        assertTrue(run.err().contains("--file " + file + " is not UTF-8: byte 0xE9 at offset 3"), run.err());
    }

    @Test
    void tokenizeRefusesATruncatedUtf8SequenceOnStandardInput() {
        byte[] input = {'a', (byte) 0xE6, (byte) 0x97}; // the first two of the three bytes of 日
        CliRun run = CliRun.withInput(input, "tokenize", "-m", llama3Vocab(), "-");
        assertTrue(run.failedWithOneLine(), run.err());
        assertTrue(run.err().contains("standard input is not UTF-8: byte 0xE6 at offset 1"), run.err());
    }

    @Test
    void tokenizeWithoutTextIsAUsageError() {
        CliRun run = CliRun.of("tokenize", "-m", llama3Vocab());
        assertEquals(2, run.exitCode());
        assertTrue(run.failedWithOneLine(), run.err());
        assertTrue(run.err().contains("no text given: give it once, with --text TEXT, --file FILE, or - for standard input"), run.err());
    }

    @Test
    void tokenizeWithTextGivenTwoWaysIsAUsageError() throws IOException {
        Path file = Files.writeString(tmp.resolve("text.txt"), "In the beginning");
        CliRun both = CliRun.of("tokenize", "-m", llama3Vocab(), "--text", "In the beginning", "--file", file.toString());
        assertEquals(2, both.exitCode());
        assertTrue(both.failedWithOneLine() && both.err().contains("the text given 2 ways (--text, --file)"), both.err());
        CliRun fileAndStdin = CliRun.withInput(new byte[0], "tokenize", "-m", llama3Vocab(), "--file", file.toString(), "-");
        assertEquals(2, fileAndStdin.exitCode());
        assertTrue(fileAndStdin.failedWithOneLine() && fileAndStdin.err().contains("the text given 2 ways (--file, -)"), fileAndStdin.err());
    }

    @Test
    void tokenizeTakesNoTextAsAnArgument() {
        CliRun run = CliRun.of("tokenize", "-m", llama3Vocab(), "In the beginning");
        assertEquals(2, run.exitCode());
        assertTrue(run.failedWithOneLine() && run.err().contains("unexpected argument 'In the beginning'"), run.err());
    }

    @Test
    void tokenizeNamesAMissingFile() {
        Path missing = tmp.resolve("no-such.txt");
        CliRun run = CliRun.of("tokenize", "-m", llama3Vocab(), "--file", missing.toString());
        assertEquals(1, run.exitCode());
        assertTrue(run.failedWithOneLine(), run.err());
        assertEquals("tandem tokenize: --file: no such file " + missing, run.err().strip());
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
