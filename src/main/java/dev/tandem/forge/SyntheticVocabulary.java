package dev.tandem.forge;

import dev.tandem.model.gguf.GgufFile;
import dev.tandem.model.gguf.GgufWriter;
import dev.tandem.model.gguf.GgufWriter.ArrayValue;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * A SentencePiece-style vocabulary of any size, as GGUF {@code tokenizer.*} metadata that Tandem's and
 * llama.cpp's {@code llama} tokenizers load: {@code <unk>} 0, {@code <s>} 1 (BOS, added), {@code </s>} 2
 * (EOS), the 256 byte-fallback tokens {@code <0x00>}..{@code <0xFF>} (3..258), then normal pieces.
 *
 * <p>The pieces: first single characters ({@code ▁}, letters, digits, punctuation), then pieces made by
 * joining two earlier pieces (the right one never starting with {@code ▁}, so {@code ▁} only opens a word),
 * at most 12 characters, drawn by a fixed generator. Every piece is therefore reachable by the tokenizer's
 * merges. Scores fall with the index, so earlier (shorter, on average) pieces merge first, as in a trained
 * model. The vocabulary depends only on its size — not on the weights' seed — so any two forged models of
 * the same vocabulary size can be paired as main and draft.
 */
public final class SyntheticVocabulary {
    /** 3 specials, 256 bytes and at least one piece. */
    public static final int MIN_SIZE = 260;

    private static final int TYPE_NORMAL = 1, TYPE_UNKNOWN = 2, TYPE_CONTROL = 3, TYPE_BYTE = 6;
    private static final String SPACE = "\u2581";
    private static final String CHARACTERS = SPACE + "etaoinshrdlucmfwypvbgkjqxzETAOINSHRDLUCMFWYPVBGKJQXZ0123456789.,;:!?'\"-()";
    private static final int MAX_PIECE_CHARS = 12;

    private SyntheticVocabulary() {}

    /** Puts the {@code tokenizer.*} keys of a synthetic vocabulary of {@code size} tokens. */
    public static void putInto(GgufWriter w, int size) {
        if (size < MIN_SIZE) throw new IllegalArgumentException("a synthetic vocabulary needs at least " + MIN_SIZE + " tokens, got " + size);
        String[] tokens = new String[size];
        float[] scores = new float[size];
        int[] types = new int[size];
        tokens[0] = "<unk>";
        types[0] = TYPE_UNKNOWN;
        tokens[1] = "<s>";
        types[1] = TYPE_CONTROL;
        tokens[2] = "</s>";
        types[2] = TYPE_CONTROL;
        for (int b = 0; b < 256; b++) {
            tokens[3 + b] = String.format("<0x%02X>", b);
            types[3 + b] = TYPE_BYTE;
        }
        List<String> pieces = pieces(size - 259);
        for (int i = 0; i < pieces.size(); i++) {
            tokens[259 + i] = pieces.get(i);
            types[259 + i] = TYPE_NORMAL;
            scores[259 + i] = -i;
        }
        w.putString("tokenizer.ggml.model", "llama");
        w.putArray("tokenizer.ggml.tokens", ArrayValue.ofStrings(tokens));
        w.putArray("tokenizer.ggml.scores", ArrayValue.ofFloat32(scores));
        w.putArray("tokenizer.ggml.token_type", ArrayValue.ofInt32(types));
        w.putUInt32("tokenizer.ggml.bos_token_id", 1);
        w.putUInt32("tokenizer.ggml.eos_token_id", 2);
        w.putUInt32("tokenizer.ggml.unknown_token_id", 0);
        w.putBool("tokenizer.ggml.add_bos_token", true);
        w.putBool("tokenizer.ggml.add_eos_token", false);
    }

    /** Copies every {@code tokenizer.*} key of {@code source}, as read; returns its token count. */
    public static int copyInto(GgufWriter w, GgufFile source) {
        String[] tokens = source.getStringArray("tokenizer.ggml.tokens");
        source.metadata().forEach((key, value) -> {
            if (key.startsWith("tokenizer.")) w.putAsRead(key, value);
        });
        return tokens.length;
    }

    static List<String> pieces(int count) {
        List<String> out = new ArrayList<>(count);
        Set<String> seen = new HashSet<>();
        int[] cps = CHARACTERS.codePoints().toArray();
        for (int i = 0; i < cps.length && out.size() < count; i++) {
            String c = Character.toString(cps[i]);
            out.add(c);
            seen.add(c);
        }
        List<String> continuations = new ArrayList<>();   // pieces that may follow another (no leading ▁)
        for (String p : out) if (!p.startsWith(SPACE)) continuations.add(p);
        long state = 0x5EED;
        while (out.size() < count) {
            // Any piece on the left; on the right one of the earliest continuations (a window growing slowly with
            // the vocabulary), so words grow by short pieces as in a trained vocabulary.
            long r1 = RandomRows.mix(state += 0x9E3779B97F4A7C15L);
            long r2 = RandomRows.mix(state += 0x9E3779B97F4A7C15L);
            String left = out.get((int) Math.floorMod(r1, (long) out.size()));
            String right = continuations.get((int) Math.floorMod(r2, (long) Math.min(continuations.size(), 64 + out.size() / 16)));
            String piece = left + right;
            if (piece.codePointCount(0, piece.length()) > MAX_PIECE_CHARS || !seen.add(piece)) continue;
            out.add(piece);
            if (!piece.startsWith(SPACE)) continuations.add(piece);
        }
        return out;
    }
}
