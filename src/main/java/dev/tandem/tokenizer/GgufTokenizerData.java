package dev.tandem.tokenizer;

import dev.tandem.model.gguf.GgufFile;

/** Reads the {@code tokenizer.*} keys of a GGUF file into {@link TokenizerData}. */
final class GgufTokenizerData {
    private GgufTokenizerData() {}

    static TokenizerData read(GgufFile gguf) {
        String source = gguf.path().toString();
        Reader r = new Reader(gguf, source);
        String model = r.string("tokenizer.ggml.model", true);
        String[] tokens = r.strings("tokenizer.ggml.tokens", false);   // required; checked after the kind
        return new TokenizerData(
                source,
                model,
                r.string("tokenizer.ggml.pre", false),
                tokens,
                r.scores("tokenizer.ggml.scores"),
                r.ints("tokenizer.ggml.token_type"),
                r.strings("tokenizer.ggml.merges", false),
                new TokenizerData.SpecialIds(
                        r.id("tokenizer.ggml.bos_token_id"),
                        r.id("tokenizer.ggml.eos_token_id"),
                        r.id("tokenizer.ggml.eot_token_id"),
                        r.id("tokenizer.ggml.eom_token_id"),
                        r.id("tokenizer.ggml.unknown_token_id"),
                        r.id("tokenizer.ggml.seperator_token_id"),     // sic: llama.cpp's key
                        r.id("tokenizer.ggml.padding_token_id"),
                        r.id("tokenizer.ggml.mask_token_id"),
                        r.firstId("tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.prefix_token_id"),
                        r.firstId("tokenizer.ggml.fim_suf_token_id", "tokenizer.ggml.suffix_token_id"),
                        r.firstId("tokenizer.ggml.fim_mid_token_id", "tokenizer.ggml.middle_token_id"),
                        r.id("tokenizer.ggml.fim_pad_token_id"),
                        r.id("tokenizer.ggml.fim_rep_token_id"),
                        r.id("tokenizer.ggml.fim_sep_token_id")),
                r.bool("tokenizer.ggml.add_bos_token"),
                r.bool("tokenizer.ggml.add_eos_token"),
                r.bool("tokenizer.ggml.add_space_prefix"),
                r.string("tokenizer.chat_template", false));
    }

    /** Typed access to optional keys, with errors that name the file and key. */
    private record Reader(GgufFile gguf, String source) {
        private Object value(String key, boolean required) {
            Object v = gguf.metadata().get(key);
            if (v == null && required) throw new TokenizerException(source + ": missing key " + key);
            return v;
        }

        private TokenizerException wrongType(String key, String expected, Object v) {
            return new TokenizerException(source + ": key " + key + " should be " + expected + ", found "
                    + v.getClass().getSimpleName());
        }

        String string(String key, boolean required) {
            Object v = value(key, required);
            if (v == null || v instanceof String) return (String) v;
            throw wrongType(key, "a string", v);
        }

        String[] strings(String key, boolean required) {
            Object v = value(key, required);
            if (v == null || v instanceof String[]) return (String[]) v;
            throw wrongType(key, "an array of strings", v);
        }

        float[] scores(String key) {
            Object v = value(key, false);
            if (v == null || v instanceof float[]) return (float[]) v;
            if (v instanceof int[] ints) {                    // llama.cpp also accepts int32 scores
                float[] f = new float[ints.length];
                for (int i = 0; i < ints.length; i++) f[i] = ints[i];
                return f;
            }
            throw wrongType(key, "an array of float32", v);
        }

        int[] ints(String key) {
            Object v = value(key, false);
            if (v == null || v instanceof int[]) return (int[]) v;
            throw wrongType(key, "an array of int32", v);
        }

        Integer id(String key) {
            Object v = value(key, false);
            if (v == null) return null;
            if (v instanceof Number n) {
                long id = n.longValue();
                return id >= 0 && id <= Integer.MAX_VALUE ? (int) id : null;   // out of range: llama.cpp ignores it
            }
            throw wrongType(key, "an integer", v);
        }

        Integer firstId(String key, String deprecatedKey) {
            Integer id = id(key);
            Integer old = id(deprecatedKey);
            return old != null ? old : id;                    // llama.cpp reads the deprecated key last
        }

        Boolean bool(String key) {
            Object v = value(key, false);
            if (v == null || v instanceof Boolean) return (Boolean) v;
            throw wrongType(key, "a boolean", v);
        }
    }
}
