package dev.tandem.tokenizer;

import java.util.Arrays;
import java.util.function.IntFunction;

/**
 * Turns a stream of token ids into text, one token at a time, without ever emitting a broken UTF-8
 * sequence: bytes of a character split over several tokens (byte-fallback tokens, byte-level BPE pieces)
 * are held back until the character is complete. Bytes that can never become a valid character are
 * emitted as U+FFFD as soon as that is certain. Not thread-safe; one per generated sequence.
 */
public final class StreamDecoder {
    private final IntFunction<byte[]> pieces;
    private byte[] pending = new byte[16];
    private int pendingLength;

    StreamDecoder(IntFunction<byte[]> pieces) {
        this.pieces = pieces;
    }

    /** Adds one token and returns the text it completes (often empty while a character is unfinished). */
    public String feed(int token) {
        byte[] piece = pieces.apply(token);
        if (pendingLength + piece.length > pending.length) {
            pending = Arrays.copyOf(pending, Math.max(pending.length * 2, pendingLength + piece.length));
        }
        System.arraycopy(piece, 0, pending, pendingLength, piece.length);
        pendingLength += piece.length;
        return drain(false);
    }

    /** Returns what is still held back (an unfinished character becomes U+FFFD) and empties the decoder. */
    public String flush() {
        return drain(true);
    }

    /** Whether bytes of an unfinished character are held back. */
    public boolean hasPending() {
        return pendingLength > 0;
    }

    private String drain(boolean atEnd) {
        StringBuilder out = new StringBuilder();
        int i = 0;
        while (i < pendingLength) {
            int b = pending[i] & 0xFF;
            int need = sequenceLength(b);
            if (need == 0) {                      // a byte no character starts with
                out.append('\uFFFD');
                i++;
                continue;
            }
            int valid = validPrefix(i, need);     // how many bytes of the sequence are there and fit
            if (valid == need) {
                out.appendCodePoint(codePoint(i, need));
                i += need;
            } else if (i + valid == pendingLength && !atEnd) {
                break;                            // unfinished but still possible: wait for more bytes
            } else {
                out.append('\uFFFD');             // broken: replace the lead byte, go on with the next
                i += Math.max(valid, 1);
            }
        }
        System.arraycopy(pending, i, pending, 0, pendingLength - i);
        pendingLength -= i;
        return out.toString();
    }

    private static int sequenceLength(int lead) {
        if (lead < 0x80) return 1;
        if (lead >= 0xC2 && lead <= 0xDF) return 2;
        if (lead >= 0xE0 && lead <= 0xEF) return 3;
        if (lead >= 0xF0 && lead <= 0xF4) return 4;
        return 0;
    }

    /** Number of leading bytes of the sequence at {@code start} that are present and valid (Unicode's rules). */
    private int validPrefix(int start, int need) {
        int lead = pending[start] & 0xFF;
        int n = 1;
        while (n < need && start + n < pendingLength) {
            int b = pending[start + n] & 0xFF;
            int lo = 0x80, hi = 0xBF;
            if (n == 1) {                         // second byte ranges exclude overlongs and surrogates
                if (lead == 0xE0) lo = 0xA0;
                else if (lead == 0xED) hi = 0x9F;
                else if (lead == 0xF0) lo = 0x90;
                else if (lead == 0xF4) hi = 0x8F;
            }
            if (b < lo || b > hi) return n;
            n++;
        }
        return n;
    }

    private int codePoint(int start, int length) {
        int lead = pending[start] & 0xFF;
        if (length == 1) return lead;
        int cp = lead & (0x7F >> length);
        for (int k = 1; k < length; k++) cp = (cp << 6) | (pending[start + k] & 0x3F);
        return cp;
    }
}
