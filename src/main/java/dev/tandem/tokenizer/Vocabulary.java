package dev.tandem.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.Comparator;
import java.util.List;

/**
 * A vocabulary after llama.cpp's load step ({@code llama_vocab::impl::load}): token texts and scores, attribute
 * bits including the adjustments llama.cpp makes by token text (end-of-turn, FIM and end-of-generation tokens
 * become CONTROL; CONTROL tokens named "unused" become UNUSED), special ids with their defaults, the BOS/EOS
 * and space-prefix flags, the end-of-generation set, and the special-token list used to cut text.
 */
final class Vocabulary {
    enum Kind { SPM, BPE }

    static final int NONE = -1;

    final Kind kind;
    final String model;
    final String pre;
    final PreTokenizer.Kind splitter;       // BPE only
    final String[] text;
    final float[] score;
    final int[] attr;
    final TokenIndex index;
    final int bos, eos, eot, eom, unk, sep, pad, mask, fimPre, fimSuf, fimMid, fimPad, fimRep, fimSep;
    final boolean addBos, addEos, addSpacePrefix, cleanSpaces, ignoreMerges;
    final int[] eogIds;
    private final BitSet eog;
    /** CONTROL, USER_DEFINED and UNKNOWN tokens, longest UTF-8 text first (ties: lower id first). */
    final int[] specialTokens;
    final String chatTemplate;

    Vocabulary(TokenizerData data) {
        String src = data.source();
        if (data.model() == null) throw new TokenizerException(src + ": missing key tokenizer.ggml.model");
        this.model = data.model();
        // Kind and the defaults that come with it (llama.cpp: "determine vocab type").
        int defBos, defEos, defUnk;
        boolean defAddBos = false, defAddEos = false, defSpacePrefix = false, clean = false, ignore = false;
        PreTokenizer.Kind split = null;
        String preName = data.pre();
        switch (model) {
            case "llama" -> {
                kind = Kind.SPM;
                defBos = 1; defEos = 2; defUnk = 0;
                defSpacePrefix = true; defAddBos = true;
                if (preName == null) preName = "default";
            }
            case "gpt2" -> {
                kind = Kind.BPE;
                defBos = 11; defEos = 11; defUnk = NONE;
                clean = true;
                if (data.merges() == null) throw new TokenizerException(src + ": missing key tokenizer.ggml.merges");
                if (preName == null) {
                    throw new TokenizerException(src + ": missing key tokenizer.ggml.pre (llama.cpp would fall back to"
                            + " its 'default' pre-tokenizer, which Tandem does not implement)");
                }
                switch (preName) {
                    case "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2",
                         "jina-v5-nano" -> { split = PreTokenizer.Kind.LLAMA3; ignore = true; defAddBos = true; }
                    case "dbrx", "smaug-bpe" -> split = PreTokenizer.Kind.LLAMA3;
                    case "qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2" -> { split = PreTokenizer.Kind.QWEN2; clean = false; }
                    case "stablelm2" -> split = PreTokenizer.Kind.QWEN2;
                    default -> throw new TokenizerException(src + ": pre-tokenizer '" + preName
                            + "' (tokenizer.ggml.pre) is not supported; supported: llama-bpe (Llama 3) and qwen2 families");
                }
            }
            default -> throw new TokenizerException(src + ": tokenizer kind '" + model
                    + "' (tokenizer.ggml.model) is not supported; supported: llama (SentencePiece), gpt2 (byte-level BPE)");
        }
        if (data.tokens() == null) throw new TokenizerException(src + ": missing key tokenizer.ggml.tokens");
        int n = data.tokens().length;
        if (data.scores() != null && data.scores().length < n) {
            throw new TokenizerException(src + ": tokenizer.ggml.scores has " + data.scores().length
                    + " entries for " + n + " tokens");
        }
        if (data.tokenTypes() != null && data.tokenTypes().length < n) {
            throw new TokenizerException(src + ": tokenizer.ggml.token_type has " + data.tokenTypes().length
                    + " entries for " + n + " tokens");
        }


        this.pre = preName;
        this.splitter = split;
        this.cleanSpaces = clean;
        this.ignoreMerges = ignore;
        this.addSpacePrefix = data.addSpacePrefix() != null ? data.addSpacePrefix() : defSpacePrefix;

        // Tokens, scores, attributes; the text-to-id map.
        text = new String[n];
        score = new float[n];
        attr = new int[n];
        index = new TokenIndex(text);
        for (int i = 0; i < n; i++) {
            String t = data.tokens()[i];
            if (t == null || t.isEmpty()) t = "[EMPTY_" + i + "]";
            text[i] = t;
            int previous = index.add(i);
            if (previous >= 0) {
                throw new TokenizerException(src + ": duplicate token in vocabulary: '" + t + "' has ids "
                        + previous + " and " + i);
            }
            score[i] = data.scores() != null ? data.scores()[i] : 0f;
            attr[i] = data.tokenTypes() != null ? TokenAttribute.bitsOfTokenType(data.tokenTypes()[i])
                    : TokenAttribute.NORMAL.bit;
        }

        // Special ids: the defaults unless out of range, then the file's keys unless out of range.
        TokenizerData.SpecialIds ids = data.specialIds() != null ? data.specialIds() : TokenizerData.SpecialIds.NONE;
        int bosId = special(defBos, ids.bos(), n), eosId = special(defEos, ids.eos(), n);
        int eotId = special(NONE, ids.eot(), n), eomId = special(NONE, ids.eom(), n);
        unk = special(defUnk, ids.unk(), n);
        sep = special(NONE, ids.sep(), n);
        pad = special(NONE, ids.pad(), n);
        mask = special(NONE, ids.mask(), n);
        int fPre = special(NONE, ids.fimPre(), n), fSuf = special(NONE, ids.fimSuf(), n);
        int fMid = special(NONE, ids.fimMid(), n), fPad = special(NONE, ids.fimPad(), n);
        int fRep = special(NONE, ids.fimRep(), n), fSep = special(NONE, ids.fimSep(), n);

        addBos = data.addBos() != null ? data.addBos() : defAddBos;
        addEos = data.addEos() != null ? data.addEos() : defAddEos;
        if (addBos && bosId == NONE) {
            throw new TokenizerException(src + ": tokenizer.ggml.add_bos_token is true, but tokenizer.ggml.bos_token_id is not set");
        }
        if (addEos && eosId == NONE) {
            throw new TokenizerException(src + ": tokenizer.ggml.add_eos_token is true, but tokenizer.ggml.eos_token_id is not set");
        }

        // Special tokens found by their text. llama.cpp scans a hash map and keeps the first hit, so with
        // several candidates the pick depends on hash order; we take the earliest candidate in its list,
        // which gives what llama.cpp reports for Llama 3 (<|eot_id|>) and Qwen (<|im_end|>).
        eotId = detectByText(eotId, EOT_TEXTS);
        eomId = detectByText(eomId, EOM_TEXTS);
        fPre = detectByText(fPre, FIM_PRE_TEXTS);
        fSuf = detectByText(fSuf, FIM_SUF_TEXTS);
        fMid = detectByText(fMid, FIM_MID_TEXTS);
        fPad = detectByText(fPad, FIM_PAD_TEXTS);
        fRep = detectByText(fRep, FIM_REP_TEXTS);
        fSep = detectByText(fSep, FIM_SEP_TEXTS);

        // CONTROL tokens whose text says "unused" are unused.
        for (int i = 0; i < n; i++) {
            if ((attr[i] & TokenAttribute.CONTROL.bit) != 0 && text[i].contains("unused")) {
                attr[i] |= TokenAttribute.UNUSED.bit;
            }
        }

        // End of generation: FIM pad/repo/sep, every token with an end-of-turn text (made CONTROL), EOS, EOT, EOM.
        BitSet eogSet = new BitSet(n);
        for (int id : new int[] {fPad, fRep, fSep}) if (id != NONE) eogSet.set(id);
        for (String t : EOG_TEXTS) {
            int id = index.find(t);
            if (id >= 0) {
                eogSet.set(id);
                attr[id] |= TokenAttribute.CONTROL.bit;
            }
        }
        for (String t : new String[] {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"}) {
            int id = index.find(t);                        // gpt-oss: always rendered
            if (id >= 0) attr[id] = TokenAttribute.USER_DEFINED.bit;
        }
        for (int id : new int[] {eosId, eotId, eomId}) if (id != NONE) eogSet.set(id);
        int endId = index.find("<|end|>");
        boolean hasReturn = inSet(eogSet, "<|return|>"), hasCall = inSet(eogSet, "<|call|>") || inSet(eogSet, "<|calls|>");
        if (endId >= 0 && eogSet.get(endId) && ((hasReturn && hasCall) || (hasCall && inSet(eogSet, "<|flush|>")))) {
            eogSet.clear(endId);
            attr[endId] = TokenAttribute.USER_DEFINED.bit;
        }
        int sId = index.find("</s>");
        if (sId >= 0 && eogSet.get(sId) && inSet(eogSet, "<|tool_response>")) {
            eogSet.clear(sId);
            attr[sId] = TokenAttribute.NORMAL.bit;
        }
        eog = eogSet;
        eogIds = eogSet.stream().toArray();

        bos = bosId; eos = eosId; eot = eotId; eom = eomId;
        fimPre = fPre; fimSuf = fSuf; fimMid = fMid; fimPad = fPad; fimRep = fRep; fimSep = fSep;

        // The special-token list: std::sort on length only in llama.cpp (ties in unspecified order); we break
        // ties by id so that the result is deterministic.
        List<Integer> specials = new ArrayList<>();
        int specialBits = TokenAttribute.CONTROL.bit | TokenAttribute.USER_DEFINED.bit | TokenAttribute.UNKNOWN.bit;
        for (int i = 0; i < n; i++) if ((attr[i] & specialBits) != 0) specials.add(i);
        int[] byteLength = new int[n];
        for (int id : specials) byteLength[id] = text[id].getBytes(StandardCharsets.UTF_8).length;
        specials.sort(Comparator.<Integer>comparingInt(id -> -byteLength[id]).thenComparingInt(id -> id));
        specialTokens = specials.stream().mapToInt(Integer::intValue).toArray();

        chatTemplate = data.chatTemplate();
    }

    private boolean inSet(BitSet set, String tokenText) {
        int id = index.find(tokenText);
        return id >= 0 && set.get(id);
    }

    /** Keeps an id the file gave; otherwise finds the token by its text and makes it CONTROL. */
    private int detectByText(int given, String[] candidates) {
        if (given != NONE) return given;
        for (String t : candidates) {
            int id = index.find(t);
            if (id >= 0) {
                attr[id] |= TokenAttribute.CONTROL.bit;
                return id;
            }
        }
        return NONE;
    }

    private static int special(int defaultId, Integer fileId, int n) {
        int id = defaultId >= n ? NONE : defaultId;
        if (fileId != null && fileId >= 0 && fileId < n) id = fileId;
        return id;
    }

    int size() {
        return text.length;
    }

    boolean isEndOfGeneration(int id) {
        return id >= 0 && eog.get(id);
    }

    boolean has(int id, TokenAttribute a) {
        return (attr[id] & a.bit) != 0;
    }

    private static final String[] EOT_TEXTS = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
            "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>"};
    private static final String[] EOM_TEXTS = {"<|eom_id|>"};
    private static final String[] FIM_PRE_TEXTS = {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>",
            "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>"};
    private static final String[] FIM_SUF_TEXTS = {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>",
            "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>"};
    private static final String[] FIM_MID_TEXTS = {"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>",
            "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>"};
    private static final String[] FIM_PAD_TEXTS = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"};
    private static final String[] FIM_REP_TEXTS = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"};
    private static final String[] FIM_SEP_TEXTS = {"<|file_sep|>"};
    private static final String[] EOG_TEXTS = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>",
            "<|flush|>", "<|calls|>", "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>",
            "[EOT]", "[EOS]", "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
            "<｜end▁of▁sentence｜>", "[e~["};
}
