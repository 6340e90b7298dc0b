package dev.tandem.tokenizer;

import dev.tandem.testing.SharedData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Issue 14, defect 2 (tokenizer files): a token id or vocabulary size sizes the tokenizer's arrays, so each is
 * checked against the vocabulary limit before anything is allocated for it; the error names the file, the entry
 * and the value, where an id of 2e9 used to grow an array to 2e9 entries.
 */
class TokenizerHostileIdsTest {
    @TempDir Path dir;

    private static final String MERGES = "\"merges\": [\"a b\"]";

    private TokenizerException refused() {
        return assertThrows(TokenizerException.class, () -> Tokenizers.fromHfFolder(dir));
    }

    private static void assertMentions(Exception e, String... parts) {
        for (String part : parts) assertTrue(e.getMessage().contains(part), "'" + part + "' missing from: " + e.getMessage());
    }

    @Test
    void aVocabularyIdOf2e9IsRefusedBeforeTheVocabularyGrows() throws IOException {
        Files.writeString(dir.resolve("tokenizer.json"),
                "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 2000000000}, " + MERGES + "}}");
        assertMentions(refused(), "tokenizer.json", "'b'", "2000000000", "allowed");
    }

    @Test
    void aFractionalVocabularyIdIsRefused() throws IOException {
        Files.writeString(dir.resolve("tokenizer.json"),
                "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1.5}, " + MERGES + "}}");
        assertMentions(refused(), "'b'", "1.5");
    }

    @Test
    void anAddedTokenIdOf2e9IsRefused() throws IOException {
        Files.writeString(dir.resolve("tokenizer.json"), "{\"added_tokens\": [{\"id\": 2000000000, \"content\": \"<x>\"}],"
                + " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, " + MERGES + "}}");
        assertMentions(refused(), "'<x>'", "2000000000");
    }

    @Test
    void aConfigVocabularySizeOf2e9IsRefusedBeforeTheTokenArraysAreAllocated() throws IOException {
        Files.copy(SharedData.kjv("draft-hf/tokenizer.model"), dir.resolve("tokenizer.model"));
        Files.writeString(dir.resolve("config.json"), "{\"vocab_size\": 2000000000}");
        assertMentions(refused(), "config.json", "vocab_size is 2000000000");
    }

    @Test
    void aNegativeAddedTokensDecoderIdIsRefused() throws IOException {
        Files.copy(SharedData.kjv("draft-hf/tokenizer.model"), dir.resolve("tokenizer.model"));
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"added_tokens_decoder\": {\"-3\": {\"content\": \"<x>\"}}}");
        assertMentions(refused(), "token id -3");
    }
}
