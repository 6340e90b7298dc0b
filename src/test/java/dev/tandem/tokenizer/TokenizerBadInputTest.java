package dev.tandem.tokenizer;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.model.gguf.GgufFile;
import dev.tandem.testing.SharedData;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Unusable tokenizer data gives a {@link TokenizerException} that names the file and what is wrong. */
class TokenizerBadInputTest {
    @TempDir
    Path dir;

    @Test
    void aFolderWithoutTokenizerFilesIsNamed() throws IOException {
        Files.writeString(dir.resolve("config.json"), "{\"vocab_size\": 10}");
        TokenizerException e = assertThrows(TokenizerException.class, () -> Tokenizers.fromHfFolder(dir));
        assertMentions(e, dir.toString(), "tokenizer.json", "tokenizer.model");
    }

    @Test
    void aTruncatedTokenizerModelIsNamed() throws IOException {
        byte[] model = Files.readAllBytes(SharedData.kjv("main-hf/tokenizer.model"));
        Files.write(dir.resolve("tokenizer.model"), java.util.Arrays.copyOf(model, model.length / 2 + 3));
        TokenizerException e = assertThrows(TokenizerException.class, () -> Tokenizers.fromHfFolder(dir));
        assertMentions(e, dir.resolve("tokenizer.model").toString(), "truncated");
    }

    @Test
    void aTokenizerJsonThatIsNotJsonIsNamed() throws IOException {
        Files.writeString(dir.resolve("tokenizer.json"), "{\"model\": {\"type\": \"BPE\", ");
        TokenizerException e = assertThrows(TokenizerException.class, () -> Tokenizers.fromHfFolder(dir));
        assertMentions(e, dir.resolve("tokenizer.json").toString(), "JSON");
    }

    @Test
    void aGgufWithoutTokensNamesTheKey() throws IOException {
        Path file = dir.resolve("no-tokens.gguf");
        Files.write(file, ggufWithStrings("general.architecture", "llama", "tokenizer.ggml.model", "llama"));
        try (GgufFile gguf = GgufFile.open(file)) {
            TokenizerException e = assertThrows(TokenizerException.class, () -> Tokenizers.fromGguf(gguf));
            assertMentions(e, file.toString(), "tokenizer.ggml.tokens");
        }
    }

    @Test
    void anUnsupportedTokenizerKindIsNamed() throws IOException {
        Path file = dir.resolve("t5.gguf");
        Files.write(file, ggufWithStrings("tokenizer.ggml.model", "t5"));
        try (GgufFile gguf = GgufFile.open(file)) {
            TokenizerException e = assertThrows(TokenizerException.class, () -> Tokenizers.fromGguf(gguf));
            assertMentions(e, file.toString(), "t5", "tokenizer.ggml.model");
        }
    }

    private static void assertMentions(Exception e, String... parts) {
        for (String p : parts) {
            assertTrue(e.getMessage().contains(p), "message \"" + e.getMessage() + "\" should mention " + p);
        }
    }

    /** A GGUF v3 file with no tensors and string metadata only (key, value, key, value, ...). */
    private static byte[] ggufWithStrings(String... keyValues) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteBuffer header = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN);
        header.put("GGUF".getBytes(StandardCharsets.US_ASCII)).putInt(3).putLong(0).putLong(keyValues.length / 2);
        out.writeBytes(header.array());
        for (int i = 0; i < keyValues.length; i += 2) {
            writeString(out, keyValues[i]);
            out.writeBytes(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(8).array());   // STRING
            writeString(out, keyValues[i + 1]);
        }
        return out.toByteArray();
    }

    private static void writeString(ByteArrayOutputStream out, String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        out.writeBytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(b.length).array());
        out.writeBytes(b);
    }
}
