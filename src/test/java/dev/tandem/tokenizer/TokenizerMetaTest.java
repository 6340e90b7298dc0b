package dev.tandem.tokenizer;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * What llama.cpp reports after loading each vocabulary ({@code *.meta.json}): size, BOS/EOS flags, special ids,
 * the end-of-generation set and every non-NORMAL attribute.
 */
class TokenizerMetaTest {

    /** Sources that carry everything the GGUF has. The Qwen3 HF folder has no config.json: see the test below. */
    @ParameterizedTest(name = "{0} from {1}")
    @CsvSource({"kjv, gguf", "kjv, hf", "llama3, gguf", "llama3, hf", "qwen3, gguf"})
    void reportsWhatLlamaCppReports(String vocabulary, String source) {
        Tokenizer t = source.equals("gguf") ? TokenizerReference.fromGguf(vocabulary) : TokenizerReference.fromHf(vocabulary);
        JsonNode meta = TokenizerReference.meta(vocabulary);
        assertAll(
                () -> assertEquals(meta.get("n_vocab").asInt(), t.vocabularySize(), "n_vocab"),
                () -> assertEquals(meta.get("bos").asInt(), t.bos(), "bos"),
                () -> assertEquals(meta.get("pad").asInt(), ((VocabularyTokenizer) t).specialId("pad"), "pad"),
                () -> assertSharedReport(meta, t));
    }

    /**
     * The Qwen3 tokenizer folder has no config.json. From it, the converter would write no vocab_size padding
     * (151,669 tokens instead of 151,936) and no bos_token_id (tokenizer_config.json has bos_token null), so
     * llama.cpp would use its BPE default BOS id, 11; the padding id comes from tokenizer_config.json's
     * pad_token. Everything else matches the GGUF.
     */
    @Test
    void qwen3FolderWithoutConfigJsonLacksOnlyPaddingAndBos() {
        Tokenizer t = TokenizerReference.fromHf("qwen3");
        JsonNode meta = TokenizerReference.meta("qwen3");
        assertAll(
                () -> assertEquals(151_669, t.vocabularySize(), "n_vocab without config.json"),
                () -> assertEquals(11, t.bos(), "llama.cpp's default BOS id for BPE without bos_token_id"),
                () -> assertEquals(meta.get("pad").asInt(), ((VocabularyTokenizer) t).specialId("pad"), "pad"),
                () -> assertSharedReport(meta, t));
    }

    private static void assertSharedReport(JsonNode meta, Tokenizer t) {
        VocabularyTokenizer v = (VocabularyTokenizer) t;
        int[] eog = new int[meta.get("eog_ids").size()];
        for (int i = 0; i < eog.length; i++) eog[i] = meta.get("eog_ids").get(i).asInt();
        int eot = meta.get("eot").asInt();
        assertAll(
                () -> assertEquals(meta.get("add_bos").asInt() == 1, t.addBos(), "add_bos"),
                () -> assertEquals(meta.get("add_eos").asInt() == 1, t.addEos(), "add_eos"),
                () -> assertEquals(meta.get("eos").asInt(), t.eos(), "eos"),
                () -> assertEquals(eot, t.eot().orElse(-1), "eot"),
                () -> assertArrayEquals(eog, t.endOfGenerationIds(), "eog_ids"),
                () -> {
                    for (int id : eog) assertEquals(true, t.isEndOfGeneration(id), "isEndOfGeneration(" + id + ")");
                },
                () -> {
                    for (String k : new String[] {"fim_pre", "fim_suf", "fim_mid", "fim_pad", "fim_rep", "fim_sep", "sep"}) {
                        assertEquals(meta.get(k).asInt(), v.specialId(k), k);
                    }
                },
                () -> assertEquals(describe(expectedRuns(meta, t.vocabularySize())), describe(actualRuns(t)),
                        "non_normal_token_attrs"));
    }

    private record Run(int first, int last, Set<TokenAttribute> attributes) {}

    /** The reference's runs of non-NORMAL ids, cut at {@code size} (for a source without the padding). */
    private static List<Run> expectedRuns(JsonNode meta, int size) {
        List<Run> runs = new ArrayList<>();
        for (JsonNode r : meta.get("non_normal_token_attrs")) {
            Set<TokenAttribute> set = EnumSet.noneOf(TokenAttribute.class);
            r.get("attr").forEach(a -> set.add(TokenAttribute.valueOf(a.asText())));
            int first = r.get("first").asInt(), last = Math.min(r.get("last").asInt(), size - 1);
            if (first <= last) runs.add(new Run(first, last, set));
        }
        return runs;
    }

    private static List<Run> actualRuns(Tokenizer t) {
        List<Run> runs = new ArrayList<>();
        Set<TokenAttribute> normal = EnumSet.of(TokenAttribute.NORMAL);
        for (int id = 0; id < t.vocabularySize(); id++) {
            Set<TokenAttribute> a = t.attributes(id);
            if (a.equals(normal)) continue;
            Run last = runs.isEmpty() ? null : runs.getLast();
            if (last != null && last.last() == id - 1 && last.attributes().equals(a)) {
                runs.set(runs.size() - 1, new Run(last.first(), id, a));
            } else {
                runs.add(new Run(id, id, a));
            }
        }
        return runs;
    }

    private static String describe(List<Run> runs) {
        StringBuilder b = new StringBuilder();
        for (Run r : runs) b.append(r.first()).append("..").append(r.last()).append(' ').append(r.attributes()).append('\n');
        return b.toString();
    }
}
