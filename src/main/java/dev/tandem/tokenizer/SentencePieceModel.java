package dev.tandem.tokenizer;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A SentencePiece {@code tokenizer.model}: the protobuf {@code ModelProto}, read by hand. Only what the
 * converter uses is kept: the pieces (field 1: piece = 1, score = 2, type = 3) and the normalizer's
 * {@code add_dummy_prefix} (field 3, then 3).
 */
record SentencePieceModel(List<Piece> pieces, boolean addDummyPrefix) {
    /** SentencePiece piece types. */
    static final int NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER_DEFINED = 4, UNUSED = 5, BYTE = 6;

    record Piece(String text, float score, int type) {}

    static SentencePieceModel read(Path file) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new TokenizerException(file + ": cannot read (" + e.getMessage() + ")", e);
        }
        return parse(bytes, file.toString());
    }

    static SentencePieceModel parse(byte[] bytes, String source) {
        List<Piece> pieces = new ArrayList<>();
        boolean addDummyPrefix = true;                      // protobuf default
        Protobuf model = new Protobuf(bytes, 0, bytes.length, source);
        while (model.hasMore()) {
            int tag = model.tag();
            int field = tag >>> 3;
            if (field == 1 && (tag & 7) == 2) {
                pieces.add(piece(model.message("pieces[" + pieces.size() + "]")));
            } else if (field == 3 && (tag & 7) == 2) {
                Protobuf normalizer = model.message("normalizer_spec");
                while (normalizer.hasMore()) {
                    int t = normalizer.tag();
                    if (t >>> 3 == 3 && (t & 7) == 0) addDummyPrefix = normalizer.varint() != 0;
                    else normalizer.skip(t);
                }
            } else {
                model.skip(tag);
            }
        }
        if (pieces.isEmpty()) throw new TokenizerException(source + ": no pieces in SentencePiece model");
        return new SentencePieceModel(pieces, addDummyPrefix);
    }

    private static Piece piece(Protobuf m) {
        String text = null;
        float score = 0f;
        int type = NORMAL;
        while (m.hasMore()) {
            int tag = m.tag();
            switch (tag) {
                case (1 << 3) | 2 -> text = m.string();
                case (2 << 3) | 5 -> score = Float.intBitsToFloat(m.fixed32());
                case (3 << 3) | 0 -> type = (int) m.varint();
                default -> m.skip(tag);
            }
        }
        if (text == null) throw new TokenizerException(m.source + ": a SentencePiece piece without text");
        return new Piece(text, score, type);
    }

    /** A cursor over protobuf wire format within {@code [pos, end)}; every read is bounds-checked. */
    private static final class Protobuf {
        private final byte[] b;
        private int pos;
        private final int end;
        final String source;

        Protobuf(byte[] b, int pos, int end, String source) {
            this.b = b;
            this.pos = pos;
            this.end = end;
            this.source = source;
        }

        boolean hasMore() {
            return pos < end;
        }

        private TokenizerException truncated(String what) {
            return new TokenizerException(source + ": truncated or corrupt SentencePiece model (" + what
                    + " at byte " + pos + " of " + b.length + ")");
        }

        long varint() {
            long v = 0;
            for (int shift = 0; shift < 64; shift += 7) {
                if (pos >= end) throw truncated("varint");
                int x = b[pos++];
                v |= (long) (x & 0x7F) << shift;
                if (x >= 0) return v;
            }
            throw truncated("varint longer than 10 bytes");
        }

        int tag() {
            long t = varint();
            if (t <= 0 || t > Integer.MAX_VALUE) throw truncated("field tag " + t);
            return (int) t;
        }

        int fixed32() {
            if (end - pos < 4) throw truncated("32-bit field");
            int v = (b[pos] & 0xFF) | (b[pos + 1] & 0xFF) << 8 | (b[pos + 2] & 0xFF) << 16 | (b[pos + 3] & 0xFF) << 24;
            pos += 4;
            return v;
        }

        private int length(String what) {
            long n = varint();
            if (n < 0 || n > end - pos) throw truncated(what + " of length " + n);
            return (int) n;
        }

        String string() {
            int n = length("string");
            String s = new String(b, pos, n, StandardCharsets.UTF_8);
            pos += n;
            return s;
        }

        Protobuf message(String what) {
            int n = length(what);
            Protobuf m = new Protobuf(b, pos, pos + n, source);
            pos += n;
            return m;
        }

        void skip(int tag) {
            switch (tag & 7) {
                case 0 -> varint();
                case 1 -> { if (end - pos < 8) throw truncated("64-bit field"); pos += 8; }
                case 2 -> {
                    int n = length("field " + (tag >>> 3));   // read before pos is used: length() moves it
                    pos += n;
                }
                case 5 -> fixed32();
                default -> throw truncated("wire type " + (tag & 7));
            }
        }
    }
}
