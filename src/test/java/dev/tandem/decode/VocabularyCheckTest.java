package dev.tandem.decode;

import dev.tandem.model.gguf.GgufFile;
import dev.tandem.testing.SharedData;
import dev.tandem.tokenizer.StreamDecoder;
import dev.tandem.tokenizer.TokenAttribute;
import dev.tandem.tokenizer.Tokenizer;
import dev.tandem.tokenizer.Tokenizers;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class VocabularyCheckTest {
    static Tokenizer kjvMain, kjvDraft, llama3;

    static Tokenizer load(Path p) {
        try (GgufFile f = GgufFile.open(p)) {
            return Tokenizers.fromGguf(f);
        }
    }

    @BeforeAll
    static void load() {
        kjvMain = load(SharedData.kjv("kjv-main-f32.gguf"));
        kjvDraft = load(SharedData.kjv("kjv-draft-q8_0.gguf"));
        llama3 = load(SharedData.root().resolve("models/tokenizers/llama3/vocab.gguf"));
    }

    @Test
    void theKjvPairIsCompatible() {
        assertDoesNotThrow(() -> VocabularyCheck.requireCompatible(kjvMain, kjvDraft));
        assertEquals(kjvMain.vocabularySize(), VocabularyCheck.sharedVocabulary(kjvMain, kjvDraft));
    }

    @Test
    void aKjvModelAndLlama3AreIncompatibleWithAReason() {
        IncompatibleDraftException e = assertThrows(IncompatibleDraftException.class, () -> VocabularyCheck.requireCompatible(kjvMain, llama3));
        System.out.println(e.getMessage());
        assertTrue(e.getMessage().contains("tokenizer type is 'llama' in main, 'gpt2' in draft"), e.getMessage());
    }

    @Test
    void paddingUpTo128IdsIsAccepted() {
        Tokenizer padded = new Edited(kjvDraft, 128, -1, null);
        assertDoesNotThrow(() -> VocabularyCheck.requireCompatible(kjvMain, padded));
        assertEquals(kjvMain.vocabularySize(), VocabularyCheck.sharedVocabulary(kjvMain, padded));
        assertEquals(kjvMain.vocabularySize(), VocabularyCheck.sharedVocabulary(padded, kjvMain));
        IncompatibleDraftException e = assertThrows(IncompatibleDraftException.class,
                () -> VocabularyCheck.requireCompatible(kjvMain, new Edited(kjvDraft, 129, -1, null)));
        assertTrue(e.getMessage().contains("differ by 129, more than the 128 padding ids allowed"), e.getMessage());
    }

    @Test
    void aChangedTokenTextIsRejectedNamingTheId() {
        String original = kjvDraft.tokenText(1234);
        IncompatibleDraftException e = assertThrows(IncompatibleDraftException.class,
                () -> VocabularyCheck.requireCompatible(kjvMain, new Edited(kjvDraft, 0, 1234, "foo")));
        assertEquals("the draft model's vocabulary is incompatible: token 1234 is '" + original + "' in main, 'foo' in draft", e.getMessage());
    }

    /** A tokenizer with {@code padding} extra ids and the text of one id replaced. */
    record Edited(Tokenizer t, int padding, int changedId, String changedText) implements Tokenizer {
        public int vocabularySize() { return t.vocabularySize() + padding; }
        public String tokenText(int id) {
            if (id == changedId) return changedText;
            return id < t.vocabularySize() ? t.tokenText(id) : "[PAD" + id + "]";
        }
        public int[] encode(String text, boolean addSpecial, boolean parseSpecial) { return t.encode(text, addSpecial, parseSpecial); }
        public byte[] tokenBytes(int id, boolean special) { return t.tokenBytes(id, special); }
        public TokenAttribute attribute(int id) { return t.attribute(id); }
        public Set<TokenAttribute> attributes(int id) { return t.attributes(id); }
        public String decode(int[] tokens, boolean removeSpecial, boolean unparseSpecial) { return t.decode(tokens, removeSpecial, unparseSpecial); }
        public byte[] decodeBytes(int[] tokens, boolean removeSpecial, boolean unparseSpecial) { return t.decodeBytes(tokens, removeSpecial, unparseSpecial); }
        public StreamDecoder streamDecoder(boolean special) { return t.streamDecoder(special); }
        public int bos() { return t.bos(); }
        public int eos() { return t.eos(); }
        public OptionalInt eot() { return t.eot(); }
        public boolean addBos() { return t.addBos(); }
        public boolean addEos() { return t.addEos(); }
        public boolean isEndOfGeneration(int id) { return t.isEndOfGeneration(id); }
        public int[] endOfGenerationIds() { return t.endOfGenerationIds(); }
        public String kind() { return t.kind(); }
        public String preTokenizer() { return t.preTokenizer(); }
        public Optional<String> chatTemplate() { return t.chatTemplate(); }
    }
}
