package dev.tandem.tokenizer;

import static org.junit.jupiter.api.Assertions.fail;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Every record of the reference engine's tokenisations, from the GGUF vocabulary and from the Hugging Face
 * files: the token ids ({@code llama_tokenize}), each token's bytes ({@code llama_token_to_piece(special=true)})
 * and the detokenised text ({@code llama_detokenize(remove_special=false, unparse_special=true)}).
 */
class TokenizerConformanceTest {

    @ParameterizedTest(name = "{0} from {1}")
    @CsvSource({"kjv, gguf", "kjv, hf", "llama3, gguf", "llama3, hf", "qwen3, gguf", "qwen3, hf"})
    void matchesEveryReferenceRecord(String vocabulary, String source) {
        long start = System.nanoTime();
        Tokenizer tokenizer = source.equals("gguf") ? TokenizerReference.fromGguf(vocabulary) : TokenizerReference.fromHf(vocabulary);
        long loaded = System.nanoTime();
        List<TokenizerReference.Record> records = TokenizerReference.records(vocabulary);
        List<String> mismatches = new ArrayList<>();
        int matches = 0;
        for (TokenizerReference.Record r : records) {
            String problem = compare(tokenizer, r);
            if (problem == null) matches++;
            else mismatches.add("line " + r.line() + " " + quote(r.text()) + " (add_bos " + r.addBos()
                    + ", parse_special " + r.parseSpecial() + "): " + problem);
        }
        System.out.printf("%s from %s: %d/%d records match (load %.0f ms)%n", vocabulary, source, matches,
                records.size(), (loaded - start) / 1e6);
        if (!mismatches.isEmpty()) {
            fail(mismatches.size() + " of " + records.size() + " records differ, first ones:\n  "
                    + String.join("\n  ", mismatches.subList(0, Math.min(8, mismatches.size()))));
        }
    }

    private static String compare(Tokenizer tokenizer, TokenizerReference.Record r) {
        int[] tokens = tokenizer.encode(r.text(), r.addBos(), r.parseSpecial());
        if (!Arrays.equals(tokens, r.tokens())) {
            return "tokens " + Arrays.toString(tokens) + ", expected " + Arrays.toString(r.tokens());
        }
        for (int i = 0; i < tokens.length; i++) {
            String hex = TokenizerReference.hex(tokenizer.tokenBytes(tokens[i], true));
            if (!hex.equals(r.piecesHex().get(i))) {
                return "piece " + i + " of token " + tokens[i] + " is " + hex + ", expected " + r.piecesHex().get(i);
            }
        }
        String detok = tokenizer.decode(tokens, false, true);
        if (!detok.equals(r.detok())) return "detok " + quote(detok) + ", expected " + quote(r.detok());
        return null;
    }

    private static String quote(String s) {
        StringBuilder b = new StringBuilder("\"");
        s.codePoints().limit(60).forEach(cp -> {
            if (cp < 0x20 || cp == 0x7F) b.append(String.format("\\x%02x", cp));
            else b.appendCodePoint(cp);
        });
        return b.append(s.codePointCount(0, s.length()) > 60 ? "...\"" : "\"").toString();
    }
}
