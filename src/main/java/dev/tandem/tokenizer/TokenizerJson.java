package dev.tandem.tokenizer;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.MissingNode;
import dev.tandem.model.ModelLimits;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The parts of a Hugging Face {@code tokenizer.json} the converter uses. The vocabulary and merges (most of a
 * 10 MB file) are streamed straight into arrays; the small sections are read as trees.
 *
 * @param vocab      model.vocab as id to text (null where an id has no entry)
 * @param vocabCount number of model.vocab entries
 * @param merges     model.merges as "left right" (pairs joined with a space, spaces inside as {@code Ġ})
 */
record TokenizerJson(String modelType, boolean byteFallback, String[] vocab, int vocabCount, String[] merges,
                     JsonNode addedTokens, JsonNode preTokenizer, JsonNode postProcessor) {

    private static final ObjectMapper JSON = new ObjectMapper();

    static TokenizerJson read(Path file) {
        try (JsonParser p = JSON.getFactory().createParser(file.toFile())) {
            return parse(p, file);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new TokenizerException(file + ": not valid JSON (" + e.getOriginalMessage() + ")", e);
        } catch (IOException e) {
            throw new TokenizerException(file + ": cannot read (" + e.getMessage() + ")", e);
        }
    }

    private static TokenizerJson parse(JsonParser p, Path file) throws IOException {
        expect(p, p.nextToken(), JsonToken.START_OBJECT, file, "the top level");
        String type = "";
        boolean byteFallback = false;
        String[] vocab = new String[0];
        int count = 0;
        List<String> merges = new ArrayList<>();
        JsonNode added = MissingNode.getInstance(), pre = MissingNode.getInstance(), post = MissingNode.getInstance();
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String field = p.currentName();
            JsonToken value = p.nextToken();
            switch (field) {
                case "added_tokens" -> added = JSON.readTree(p);
                case "pre_tokenizer" -> pre = JSON.readTree(p);
                case "post_processor" -> post = JSON.readTree(p);
                case "model" -> {
                    expect(p, value, JsonToken.START_OBJECT, file, "model");
                    while (p.nextToken() == JsonToken.FIELD_NAME) {
                        String m = p.currentName();
                        JsonToken v = p.nextToken();
                        switch (m) {
                            case "type" -> type = p.getValueAsString("");
                            case "byte_fallback" -> byteFallback = v == JsonToken.VALUE_TRUE;
                            case "vocab" -> {
                                expect(p, v, JsonToken.START_OBJECT, file, "model.vocab");
                                vocab = new String[1 << 16];
                                while (p.nextToken() == JsonToken.FIELD_NAME) {
                                    String text = p.currentName();
                                    JsonToken idToken = p.nextToken();
                                    // An id sizes the arrays below: checked before any is grown to it.
                                    long id = idToken == JsonToken.VALUE_NUMBER_INT ? p.getValueAsLong(-1) : -1;
                                    if (id < 0 || id >= ModelLimits.MAX_VOCABULARY) {
                                        throw new TokenizerException(file + ": model.vocab entry '" + text + "' has id " + p.getText()
                                                + "; allowed: integers from 0 to " + (ModelLimits.MAX_VOCABULARY - 1));
                                    }
                                    if (id >= vocab.length) vocab = Arrays.copyOf(vocab, (int) Math.max(id + 1, Math.min(vocab.length * 2L, ModelLimits.MAX_VOCABULARY)));
                                    vocab[(int) id] = text;
                                    count++;
                                }
                            }
                            case "merges" -> {
                                expect(p, v, JsonToken.START_ARRAY, file, "model.merges");
                                for (JsonToken t = p.nextToken(); t != JsonToken.END_ARRAY; t = p.nextToken()) {
                                    if (t == JsonToken.VALUE_STRING) {
                                        merges.add(p.getText());
                                    } else if (t == JsonToken.START_ARRAY) {
                                        String a = nextString(p, file, merges.size()), b = nextString(p, file, merges.size());
                                        if (p.nextToken() != JsonToken.END_ARRAY) throw badMerge(file, merges.size());
                                        merges.add(a.replace(' ', '\u0120') + " " + b.replace(' ', '\u0120'));
                                    } else {
                                        throw badMerge(file, merges.size());
                                    }
                                }
                            }
                            default -> p.skipChildren();
                        }
                    }
                }
                default -> p.skipChildren();
            }
        }
        int size = 0;
        for (int i = vocab.length - 1; i >= 0; i--) if (vocab[i] != null) { size = i + 1; break; }
        return new TokenizerJson(type, byteFallback, Arrays.copyOf(vocab, size), count, merges.toArray(String[]::new),
                added, pre, post);
    }

    private static String nextString(JsonParser p, Path file, int index) throws IOException {
        if (p.nextToken() != JsonToken.VALUE_STRING) throw badMerge(file, index);
        return p.getText();
    }

    private static TokenizerException badMerge(Path file, int index) {
        return new TokenizerException(file + ": model.merges[" + index + "] is neither \"a b\" nor [\"a\", \"b\"]");
    }

    private static void expect(JsonParser p, JsonToken actual, JsonToken expected, Path file, String where) {
        if (actual != expected) {
            throw new TokenizerException(file + ": " + where + " should be " + (expected == JsonToken.START_OBJECT
                    ? "an object" : "an array") + " (at line " + p.currentLocation().getLineNr() + ")");
        }
    }
}
