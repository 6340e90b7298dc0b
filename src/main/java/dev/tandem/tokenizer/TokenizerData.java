package dev.tandem.tokenizer;

import java.util.Optional;

/**
 * A vocabulary as GGUF stores it ({@code tokenizer.ggml.*} keys), whichever file it came from. Absent optional
 * keys are {@code null}: llama.cpp then uses defaults that depend on the tokenizer kind, applied by
 * {@link Vocabulary}.
 *
 * @param source      where the data came from, for error messages (a file, or a folder)
 * @param model       {@code tokenizer.ggml.model}: "llama" (SentencePiece) or "gpt2" (byte-level BPE)
 * @param pre         {@code tokenizer.ggml.pre}, or null
 * @param tokens      {@code tokenizer.ggml.tokens}
 * @param scores      {@code tokenizer.ggml.scores}, or null (all 0)
 * @param tokenTypes  {@code tokenizer.ggml.token_type} (1 normal .. 6 byte), or null (all normal)
 * @param merges      {@code tokenizer.ggml.merges} ("left right"), or null
 * @param specialIds  special ids by GGUF key suffix, e.g. "bos" for {@code tokenizer.ggml.bos_token_id}
 */
public record TokenizerData(
        String source,
        String model,
        String pre,
        String[] tokens,
        float[] scores,
        int[] tokenTypes,
        String[] merges,
        SpecialIds specialIds,
        Boolean addBos,
        Boolean addEos,
        Boolean addSpacePrefix,
        String chatTemplate) {

    /** Special token ids as GGUF keys give them; null where the key is absent. */
    public record SpecialIds(Integer bos, Integer eos, Integer eot, Integer eom, Integer unk, Integer sep,
                             Integer pad, Integer mask, Integer fimPre, Integer fimSuf, Integer fimMid,
                             Integer fimPad, Integer fimRep, Integer fimSep) {
        public static final SpecialIds NONE =
                new SpecialIds(null, null, null, null, null, null, null, null, null, null, null, null, null, null);
    }

    public Optional<String> chatTemplateIfAny() {
        return Optional.ofNullable(chatTemplate);
    }
}
