package dev.tandem.tokenizer;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.model.ModelLimits;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Reads a Hugging Face tokenizer folder into the {@link TokenizerData} that llama.cpp's
 * {@code convert_hf_to_gguf.py} would write into a GGUF: token types as {@code get_vocab_base} (byte-level
 * BPE) or {@code _create_vocab_sentencepiece} (SentencePiece) assign them, padding to {@code config.json}'s
 * {@code vocab_size} with {@code [PAD{id}]} UNUSED entries, and special ids, add-BOS/EOS flags and chat template
 * as {@code gguf.SpecialVocab} finds them. A {@code tokenizer.model} is preferred to a {@code tokenizer.json},
 * as the converter does for Llama-family models.
 */
final class HuggingFaceTokenizerFolder {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String[] SPECIAL_TYPES = {"bos", "eos", "unk", "sep", "pad", "cls", "mask"};

    static final String LLAMA3_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"
            + "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    static final String QWEN2_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"
            + "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

    private final Path dir;
    private final JsonNode tokenizerConfig;     // null when absent
    private final JsonNode config;              // null when absent

    private HuggingFaceTokenizerFolder(Path dir) {
        this.dir = dir;
        this.tokenizerConfig = readJsonIfPresent(dir.resolve("tokenizer_config.json"));
        this.config = readJsonIfPresent(dir.resolve("config.json"));
    }

    static TokenizerData read(Path dir) {
        if (!Files.isDirectory(dir)) throw new TokenizerException(dir + ": not a folder");
        HuggingFaceTokenizerFolder folder = new HuggingFaceTokenizerFolder(dir);
        if (Files.isRegularFile(dir.resolve("tokenizer.model"))) return folder.readSentencePiece();
        if (Files.isRegularFile(dir.resolve("tokenizer.json"))) return folder.readByteLevelBpe();
        throw new TokenizerException(dir + ": no tokenizer.json or tokenizer.model in this folder");
    }

    // ---- SentencePiece: _create_vocab_sentencepiece -------------------------------------------------------

    private TokenizerData readSentencePiece() {
        Path modelFile = dir.resolve("tokenizer.model");
        SentencePieceModel sp = SentencePieceModel.read(modelFile);
        int vocabSize = configVocabSize().orElse(sp.pieces().size());
        String[] tokens = new String[vocabSize];
        float[] scores = new float[vocabSize];
        int[] types = new int[vocabSize];
        for (int i = 0; i < vocabSize; i++) {
            tokens[i] = "[PAD" + i + "]";
            scores[i] = -10000f;
            types[i] = 5;
        }
        for (int i = 0; i < Math.min(vocabSize, sp.pieces().size()); i++) {
            SentencePieceModel.Piece p = sp.pieces().get(i);
            tokens[i] = p.text();
            scores[i] = p.score();
            // The converter asks IsUnknown, IsControl, IsUnused, IsByte: a USER_DEFINED piece stays NORMAL.
            types[i] = switch (p.type()) {
                case SentencePieceModel.UNKNOWN -> 2;
                case SentencePieceModel.CONTROL -> 3;
                case SentencePieceModel.UNUSED -> 5;
                case SentencePieceModel.BYTE -> 6;
                default -> 1;
            };
        }
        JsonNode added = readJsonIfPresent(dir.resolve("added_tokens.json"));
        if (added != null) {
            for (Map.Entry<String, JsonNode> e : added.properties()) {
                int id = e.getValue().asInt(-1);
                if (id < 0 || id >= vocabSize) continue;
                tokens[id] = e.getKey();
                scores[id] = -1000f;
                types[id] = 4;
            }
        }
        if (tokenizerConfig != null && tokenizerConfig.path("added_tokens_decoder").isObject()) {
            for (Map.Entry<String, JsonNode> e : tokenizerConfig.path("added_tokens_decoder").properties()) {
                int id = parseId(e.getKey(), "tokenizer_config.json added_tokens_decoder");
                if (id >= vocabSize) continue;
                String content = e.getValue().path("content").asText();
                if (e.getValue().path("special").asBoolean(false) || looksSpecial(content)) {
                    types[id] = 3;
                } else {
                    content = content.replace('\u2581', ' ');
                    types[id] = 4;
                }
                scores[id] = -1000f;
                tokens[id] = content;
            }
        }
        Specials specials = specials(List.of(), vocabSize, null);
        return new TokenizerData(dir.toString(), "llama", "default", tokens, scores, types, null,
                specials.ids(), specials.addBos, specials.addEos, null, specials.chatTemplate);
    }

    // ---- byte-level BPE: get_vocab_base + SpecialVocab(load_merges=True) ----------------------------------

    private TokenizerData readByteLevelBpe() {
        Path file = dir.resolve("tokenizer.json");
        TokenizerJson tokenizer = TokenizerJson.read(file);
        if (!tokenizer.modelType().equals("BPE") || tokenizer.byteFallback()) {
            throw new TokenizerException(file + ": model type '" + tokenizer.modelType() + "'"
                    + (tokenizer.byteFallback() ? " with byte_fallback" : "")
                    + " is not supported without a tokenizer.model; supported: byte-level BPE (GPT-2 style)");
        }
        if (tokenizer.vocabCount() == 0) throw new TokenizerException(file + ": missing model.vocab");
        if (tokenizer.merges().length == 0) throw new TokenizerException(file + ": missing model.merges");

        List<AddedToken> addedTokens = addedTokens(tokenizer.addedTokens(), file);
        Map<String, AddedToken> addedByContent = new HashMap<>();
        int maxId = tokenizer.vocab().length - 1;
        for (AddedToken t : addedTokens) {
            addedByContent.putIfAbsent(t.content, t);
            maxId = Math.max(maxId, t.id);
        }
        String[] byId = Arrays.copyOf(tokenizer.vocab(), maxId + 1);
        for (AddedToken t : addedTokens) if (t.id >= 0) byId[t.id] = t.content;
        int vocabSize = configVocabSize().orElse(vocabularyEntries(tokenizer, addedTokens));

        String[] tokens = new String[vocabSize];
        int[] types = new int[vocabSize];
        for (int i = 0; i < vocabSize; i++) {
            String token = i < byId.length ? byId[i] : null;
            AddedToken added = token == null ? null : addedByContent.get(token);
            if (token == null) {
                tokens[i] = "[PAD" + i + "]";
                types[i] = 5;
            } else if (added != null) {
                if (isSpecial(added) || looksSpecial(token)) {
                    types[i] = 3;
                } else {
                    token = token.replace('\u2581', ' ');
                    types[i] = 4;
                }
                tokens[i] = token;
            } else {
                tokens[i] = token;
                types[i] = 1;
            }
        }
        String pre = preTokenizerName(tokenizer.preTokenizer(), file);
        Specials specials = specials(addedTokens, null, tokenizer.postProcessor());
        return new TokenizerData(dir.toString(), "gpt2", pre, tokens, null, types, tokenizer.merges(),
                specials.ids(), specials.addBos, specials.addEos, null, specials.chatTemplate);
    }

    /** {@code len(tokenizer.vocab)}: distinct entries of the model vocabulary and the added tokens. */
    private static int vocabularyEntries(TokenizerJson tokenizer, List<AddedToken> added) {
        Set<String> extra = new HashSet<>();
        Set<String> vocab = null;
        for (AddedToken t : added) {
            if (t.id < tokenizer.vocab().length && t.content.equals(tokenizer.vocab()[t.id])) continue;
            if (vocab == null) vocab = new HashSet<>(Arrays.asList(tokenizer.vocab()));
            if (!vocab.contains(t.content)) extra.add(t.content);
        }
        return tokenizer.vocabCount() + extra.size();
    }

    private boolean isSpecial(AddedToken t) {
        JsonNode decoder = tokenizerConfig == null ? null : tokenizerConfig.path("added_tokens_decoder").get(Integer.toString(t.id));
        return decoder != null && decoder.has("special") ? decoder.path("special").asBoolean() : t.special;
    }

    private record AddedToken(int id, String content, boolean special) {}

    private static List<AddedToken> addedTokens(JsonNode addedTokens, Path file) {
        List<AddedToken> list = new java.util.ArrayList<>();
        for (JsonNode t : addedTokens) {
            JsonNode id = t.path("id");
            if (!id.isIntegralNumber() || !id.canConvertToInt() || id.asInt() < 0 || id.asInt() >= ModelLimits.MAX_VOCABULARY) {
                throw new TokenizerException(file + ": added_tokens entry '" + t.path("content").asText() + "' has id " + id
                        + "; allowed: 0 to " + (ModelLimits.MAX_VOCABULARY - 1));
            }
            list.add(new AddedToken(id.asInt(), t.path("content").asText(), t.path("special").asBoolean(false)));
        }
        return list;
    }

    /**
     * The converter names the pre-tokenizer by hashing what the tokenizer makes of a test text; we recognise
     * the two supported ones by their split regex instead.
     */
    private static String preTokenizerName(JsonNode pre, Path file) {
        String regex = findSplitRegex(pre);
        if (LLAMA3_REGEX.equals(regex)) return "llama-bpe";
        if (QWEN2_REGEX.equals(regex)) return "qwen2";
        throw new TokenizerException(file + ": pre_tokenizer " + (regex == null ? "without a Split regex" : "regex " + regex)
                + " is not supported; supported: the Llama 3 (llama-bpe) and Qwen2 regexes");
    }

    private static String findSplitRegex(JsonNode pre) {
        if (pre == null || pre.isMissingNode() || pre.isNull()) return null;
        if ("Split".equals(pre.path("type").asText()) && pre.path("pattern").has("Regex")) {
            return pre.path("pattern").path("Regex").asText();
        }
        for (JsonNode p : pre.path("pretokenizers")) {
            String r = findSplitRegex(p);
            if (r != null) return r;
        }
        return null;
    }

    // ---- gguf.SpecialVocab ---------------------------------------------------------------------------------

    private static final class Specials {
        final Map<String, Integer> idByType = new HashMap<>();
        Boolean addBos, addEos;
        String chatTemplate;

        TokenizerData.SpecialIds ids() {
            return new TokenizerData.SpecialIds(idByType.get("bos"), idByType.get("eos"), null, null,
                    idByType.get("unk"), idByType.get("sep"), idByType.get("pad"), idByType.get("mask"),
                    null, null, null, null, null, null);
        }

        void set(String type, Integer id, Integer nVocab) {
            if (id == null || id < 0 || (nVocab != null && id >= nVocab)) return;
            idByType.putIfAbsent(type, id);
        }
    }

    /** {@code postProcessor} is tokenizer.json's post_processor, or null when there is no tokenizer.json. */
    private Specials specials(List<AddedToken> added, Integer nVocab, JsonNode postProcessor) {
        Specials s = new Specials();
        Map<String, String> tokenOf = new HashMap<>();   // "bos" -> "<s>", from tokenizer_config.json
        if (tokenizerConfig != null) {
            for (String type : SPECIAL_TYPES) {
                JsonNode entry = tokenizerConfig.get(type + "_token");
                if (entry != null && entry.isTextual()) tokenOf.put(type, entry.asText());
                else if (entry != null && entry.path("content").isTextual()) tokenOf.put(type, entry.path("content").asText());
            }
        }
        if (postProcessor != null) {
            if (isBlank(tokenOf.get("bos")) && !isBlank(tokenOf.get("cls"))) tokenOf.put("bos", tokenOf.get("cls"));
            if (isBlank(tokenOf.get("eos")) && !isBlank(tokenOf.get("sep"))) tokenOf.put("eos", tokenOf.get("sep"));
            readPostProcessor(postProcessor, tokenOf, s);
        }
        if (tokenizerConfig != null) {
            s.chatTemplate = chatTemplate();
            for (String type : SPECIAL_TYPES) {
                JsonNode add = tokenizerConfig.get("add_" + type + "_token");
                if (add != null && add.isBoolean()) {
                    if (type.equals("bos")) s.addBos = add.asBoolean();
                    if (type.equals("eos")) s.addEos = add.asBoolean();
                }
                String content = tokenOf.get(type);
                if (content == null) continue;
                for (AddedToken t : added) {
                    if (t.content.equals(content)) {
                        s.set(type, t.id, nVocab);
                        break;
                    }
                }
            }
        }
        if (config != null) {
            for (String type : SPECIAL_TYPES) {
                JsonNode id = config.get(type + "_token_id");
                if ((id == null || id.isNull()) && config.has("text_config")) id = config.path("text_config").get(type + "_token_id");
                if (id != null && id.isIntegralNumber()) s.set(type, id.asInt(), nVocab);
            }
        }
        return s;
    }

    private static boolean isBlank(String s) {
        return s == null || s.isEmpty();
    }

    /** The simple cases of the converter's TemplateProcessing reading: BOS first and EOS last in "single". */
    private void readPostProcessor(JsonNode post, Map<String, String> tokenOf, Specials s) {
        if (post.isMissingNode() || post.isNull()) return;
        Iterable<JsonNode> processors = post.has("processors") ? post.path("processors") : List.of(post);
        for (JsonNode p : processors) {
            String type = p.path("type").asText();
            if (type.equals("RobertaProcessing")) {
                s.addBos = true;
                s.addEos = true;
            } else if (type.equals("TemplateProcessing")) {
                JsonNode single = p.path("single");
                if (single.size() > 1) {
                    String first = single.get(0).path("SpecialToken").path("id").asText(null);
                    if (first != null) {
                        if (tokenizerConfig == null) tokenOf.put("bos", first);
                        s.addBos = first.equals(tokenOf.get("bos")) || first.equals(tokenOf.get("cls"));
                    }
                    String last = single.get(single.size() - 1).path("SpecialToken").path("id").asText(null);
                    if (last != null) {
                        if (tokenizerConfig == null) tokenOf.put("eos", last);
                        s.addEos = last.equals(tokenOf.get("eos"));
                    }
                }
            }
        }
    }

    private String chatTemplate() {
        JsonNode t = tokenizerConfig.get("chat_template");
        if (t != null && t.isTextual()) return t.asText();
        if (t != null && t.isArray()) {
            for (JsonNode named : t) if ("default".equals(named.path("name").asText())) return named.path("template").asText();
            return null;
        }
        try {
            Path jinja = dir.resolve("chat_template.jinja");
            if (Files.isRegularFile(jinja)) return Files.readString(jinja);
        } catch (IOException e) {
            throw new TokenizerException(dir.resolve("chat_template.jinja") + ": cannot read (" + e.getMessage() + ")", e);
        }
        JsonNode json = readJsonIfPresent(dir.resolve("chat_template.json"));
        return json != null && json.path("chat_template").isTextual() ? json.path("chat_template").asText() : null;
    }

    private java.util.OptionalInt configVocabSize() {
        if (config == null) return java.util.OptionalInt.empty();
        JsonNode v = config.has("vocab_size_per_layer_input") ? config.get("vocab_size_per_layer_input") : config.get("vocab_size");
        if (v == null || !v.isIntegralNumber()) return java.util.OptionalInt.empty();
        if (!v.canConvertToInt() || v.asInt() < 1 || v.asInt() > ModelLimits.MAX_VOCABULARY) {
            throw new TokenizerException(dir.resolve("config.json") + ": vocab_size is " + v + "; allowed: 1 to " + ModelLimits.MAX_VOCABULARY);
        }
        return java.util.OptionalInt.of(v.asInt());
    }

    /** The converter's {@code does_token_look_special}. */
    static boolean looksSpecial(String t) {
        return t.equals("<pad>") || t.equals("<mask>") || t.equals("<2mass>") || t.equals("[@BOS@]")
                || (t.startsWith("<|") && t.endsWith("|>"))
                || (t.startsWith("<｜") && t.endsWith("｜>"))
                || (t.startsWith("<unused") && t.endsWith(">"));
    }

    private static int parseId(String key, String where) {
        try {
            int id = Integer.parseInt(key);
            if (id < 0 || id >= ModelLimits.MAX_VOCABULARY) {
                throw new TokenizerException(where + ": token id " + id + "; allowed: 0 to " + (ModelLimits.MAX_VOCABULARY - 1));
            }
            return id;
        } catch (NumberFormatException e) {
            throw new TokenizerException(where + ": token id '" + key + "' is not a number");
        }
    }

    private static JsonNode readJsonIfPresent(Path file) {
        if (!Files.isRegularFile(file)) return null;
        try {
            return JSON.readTree(file.toFile());
        } catch (JsonProcessingException e) {
            throw new TokenizerException(file + ": not valid JSON (" + e.getOriginalMessage() + ")", e);
        } catch (IOException e) {
            throw new TokenizerException(file + ": cannot read (" + e.getMessage() + ")", e);
        }
    }
}
