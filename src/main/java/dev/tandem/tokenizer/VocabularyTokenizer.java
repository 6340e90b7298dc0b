package dev.tandem.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.Set;

/**
 * The tokenizer for one {@link Vocabulary}: special-token splitting, then SentencePiece or byte-level BPE on
 * each raw-text fragment ({@code llama_vocab::impl::tokenize}), and piece-by-piece decoding with llama.cpp's
 * space handling ({@code token_to_piece}, {@code detokenize}).
 */
final class VocabularyTokenizer implements Tokenizer {
    private final Vocabulary vocab;
    private final SpecialTokenSplitter splitter;
    private final SentencePieceEncoder spm;      // null for BPE
    private final BytePairEncoder bpe;           // null for SPM
    /** {@code token_to_piece(id, special = true)} of every token, computed on first use. */
    private final byte[][] pieces;

    VocabularyTokenizer(TokenizerData data) {
        this.vocab = new Vocabulary(data);
        this.splitter = new SpecialTokenSplitter(vocab);
        this.spm = vocab.kind == Vocabulary.Kind.SPM ? new SentencePieceEncoder(vocab) : null;
        this.bpe = vocab.kind == Vocabulary.Kind.BPE ? new BytePairEncoder(vocab, data.merges()) : null;
        this.pieces = new byte[vocab.size()][];
    }

    @Override
    public int vocabularySize() {
        return vocab.size();
    }

    @Override
    public int[] encode(String text, boolean addSpecial, boolean parseSpecial) {
        IntList out = new IntList();
        if (addSpecial && vocab.addBos) out.add(vocab.bos);
        var fragments = splitter.split(text, parseSpecial);
        if (spm != null) {
            SentencePieceEncoder.Session session = spm.new Session();
            boolean previousIsSpecial = true;      // the first fragment gets the space prefix too
            for (var fragment : fragments) {
                if (fragment.isToken()) {
                    out.add(fragment.token());
                    previousIsSpecial = true;
                    continue;
                }
                String raw = text.substring(fragment.start(), fragment.end());
                String prefixed = vocab.addSpacePrefix && previousIsSpecial ? " " + raw : raw;
                session.encode(prefixed.replace(' ', '\u2581'), out);
                previousIsSpecial = false;
            }
        } else {
            BytePairEncoder.Session session = bpe.new Session();
            for (var fragment : fragments) {
                if (fragment.isToken()) {
                    out.add(fragment.token());
                } else {
                    encodeBpeFragment(text.substring(fragment.start(), fragment.end()), session, out);
                }
            }
        }
        if (addSpecial && vocab.addEos) out.add(vocab.eos);
        return out.toArray();
    }

    private void encodeBpeFragment(String fragment, BytePairEncoder.Session session, IntList out) {
        int[] cps = fragment.codePoints().toArray();
        int[] classes = new int[cps.length];
        int[] byteOffset = new int[cps.length + 1];      // UTF-8 offset of each code point
        for (int i = 0; i < cps.length; i++) {
            classes[i] = CodepointClass.of(cps[i]);
            byteOffset[i + 1] = byteOffset[i] + utf8Length(cps[i]);
        }
        byte[] utf8 = fragment.getBytes(StandardCharsets.UTF_8);
        PreTokenizer.split(vocab.splitter, cps, classes, cps.length, (start, end) -> {
            session.encodeWord(utf8, byteOffset[start], byteOffset[end], out);
            return 0;
        });
    }

    private static int utf8Length(int cp) {
        return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    }

    @Override
    public byte[] tokenBytes(int id, boolean special) {
        checkId(id);
        int specialBits = TokenAttribute.UNKNOWN.bit | TokenAttribute.CONTROL.bit;
        if (!special && (vocab.attr[id] & specialBits) != 0) return new byte[0];
        byte[] piece = pieces[id];
        if (piece == null) {
            piece = pieceOf(id);
            pieces[id] = piece;                          // a benign race: every thread computes the same array
        }
        return piece.clone();
    }

    /** {@code token_to_piece(id, special = true)}. */
    private byte[] pieceOf(int id) {
        int a = vocab.attr[id];
        String text = vocab.text[id];
        if ((a & (TokenAttribute.UNKNOWN.bit | TokenAttribute.CONTROL.bit | TokenAttribute.USER_DEFINED.bit)) != 0) {
            return text.getBytes(StandardCharsets.UTF_8);
        }
        if ((a & TokenAttribute.NORMAL.bit) != 0) {
            return vocab.kind == Vocabulary.Kind.SPM
                    ? text.replace('\u2581', ' ').getBytes(StandardCharsets.UTF_8)
                    : ByteLevel.decode(text);
        }
        if ((a & TokenAttribute.BYTE.bit) != 0) {
            return new byte[] {(byte) parseByteToken(text)};
        }
        return new byte[0];                              // UNUSED, UNDEFINED
    }

    /** {@code token_to_byte}: the hex digits of {@code <0xXX>} (strtol, so bad digits give 0). */
    private static int parseByteToken(String text) {
        if (text.length() < 5) return 0;
        try {
            return Integer.parseInt(text.substring(3, 5), 16);
        } catch (NumberFormatException e) {
            return 0;
        }
    }

    @Override
    public String tokenText(int id) {
        checkId(id);
        return vocab.text[id];
    }

    @Override
    public TokenAttribute attribute(int id) {
        checkId(id);
        return TokenAttribute.primaryOf(vocab.attr[id]);
    }

    @Override
    public Set<TokenAttribute> attributes(int id) {
        checkId(id);
        return TokenAttribute.setOf(vocab.attr[id]);
    }

    @Override
    public String decode(int[] tokens, boolean removeSpecial, boolean unparseSpecial) {
        return new String(decodeBytes(tokens, removeSpecial, unparseSpecial), StandardCharsets.UTF_8);
    }

    @Override
    public byte[] decodeBytes(int[] tokens, boolean removeSpecial, boolean unparseSpecial) {
        int from = 0, to = tokens.length;
        boolean removeSpace = vocab.addSpacePrefix;
        if (removeSpecial && vocab.addBos && to > 0 && tokens[0] == vocab.bos) {
            removeSpace = false;
            from++;
        }
        if (removeSpecial && vocab.addEos && to > from && tokens[to - 1] == vocab.eos) to--;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (int i = from; i < to; i++) {
            byte[] piece = tokenBytes(tokens[i], unparseSpecial);
            int skip = removeSpace && piece.length > 0 && piece[0] == ' ' ? 1 : 0;   // lstrip = 1 on the first
            out.write(piece, skip, piece.length - skip);
            removeSpace = false;
        }
        byte[] text = out.toByteArray();
        return vocab.cleanSpaces ? cleanSpaces(text) : text;
    }

    /**
     * {@code clean_up_tokenization_spaces} as llama.cpp's detokenize does it, three in-place passes over the
     * bytes: drop a space before {@code ? ! . ,}; turn {@code " ' "} into {@code "'"}; drop a space before
     * {@code 's 'm 're 've}. Written as the C++ is, reading and writing the same buffer.
     */
    static byte[] cleanSpaces(byte[] text) {
        int total = text.length;
        // first pass: " ?", " !", " .", " ,"
        int total1 = total;
        total = total > 0 ? 1 : 0;
        for (int i = 1; i < total1; i++) {
            byte x = text[i];
            if (text[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) total--;
            text[total++] = x;
        }
        // second pass: " ' "
        int total2 = total;
        total = total > 0 ? 1 : 0;
        for (int i = 1; i < total2; i++) {
            byte x = text[i];
            if (x == '\'' && i + 1 < total2 && text[i - 1] == ' ' && text[i + 1] == ' ') {
                total--;
                text[++i] = 0;
            }
            text[total++] = x;
        }
        // third pass: " 's", " 'm", " 're", " 've" (not " 't", " 'd", " 'll")
        int total3 = total;
        total = total > 0 ? 1 : 0;
        for (int i = 1; i < total3; i++) {
            byte x = text[i];
            if (text[i - 1] == ' ' && x == '\'' && i + 1 < total3) {
                byte x1 = text[i + 1];
                if (x1 == 's' || x1 == 'm') {
                    total--;
                } else if (x1 != 't' && x1 != 'd' && i + 2 < total3) {
                    byte x2 = text[i + 2];
                    if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) total--;
                }
            }
            text[total++] = x;
        }
        return Arrays.copyOf(text, total);
    }

    @Override
    public StreamDecoder streamDecoder(boolean special) {
        return new StreamDecoder(id -> tokenBytes(id, special));
    }

    @Override
    public int bos() {
        return vocab.bos;
    }

    @Override
    public int eos() {
        return vocab.eos;
    }

    @Override
    public OptionalInt eot() {
        return vocab.eot >= 0 ? OptionalInt.of(vocab.eot) : OptionalInt.empty();
    }

    @Override
    public boolean addBos() {
        return vocab.addBos;
    }

    @Override
    public boolean addEos() {
        return vocab.addEos;
    }

    @Override
    public boolean isEndOfGeneration(int id) {
        return vocab.isEndOfGeneration(id);
    }

    @Override
    public int[] endOfGenerationIds() {
        return vocab.eogIds.clone();
    }

    @Override
    public String kind() {
        return vocab.model;
    }

    @Override
    public String preTokenizer() {
        return vocab.pre;
    }

    @Override
    public Optional<String> chatTemplate() {
        return Optional.ofNullable(vocab.chatTemplate);
    }

    /** Ids llama.cpp reports besides BOS/EOS/EOT (for tests and diagnostics): pad, unk, FIM ids. */
    int specialId(String name) {
        return switch (name) {
            case "pad" -> vocab.pad;
            case "unk" -> vocab.unk;
            case "sep" -> vocab.sep;
            case "fim_pre" -> vocab.fimPre;
            case "fim_suf" -> vocab.fimSuf;
            case "fim_mid" -> vocab.fimMid;
            case "fim_pad" -> vocab.fimPad;
            case "fim_rep" -> vocab.fimRep;
            case "fim_sep" -> vocab.fimSep;
            default -> throw new IllegalArgumentException("unknown special id " + name);
        };
    }

    private void checkId(int id) {
        if (id < 0 || id >= vocab.size()) {
            throw new IllegalArgumentException("token id " + id + " is outside the vocabulary (0.." + (vocab.size() - 1) + ")");
        }
    }
}
