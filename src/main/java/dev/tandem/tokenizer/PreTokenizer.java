package dev.tandem.tokenizer;

import java.util.function.IntBinaryOperator;

/**
 * Cuts a text fragment into pre-tokens, as llama.cpp's hand-written splitters do
 * ({@code unicode_regex_split_custom_llama3}; the Qwen2 one differs only in taking digits one at a time).
 * The regex they implement is
 * <pre>(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+</pre>
 * with {@code \p{N}} instead of {@code \p{N}{1,3}} for Qwen2. The alternatives are tried in that order at each
 * position, exactly as the C++ code does (including its treatment of positions past the fragment's end).
 */
final class PreTokenizer {
    enum Kind { LLAMA3, QWEN2 }

    private PreTokenizer() {}

    /**
     * Calls {@code sink.applyAsInt(start, end)} for each pre-token, as code point indices into {@code cps}.
     * {@code classes[i]} is {@link CodepointClass#of} of {@code cps[i]}.
     */
    static void split(Kind kind, int[] cps, int[] classes, int length, IntBinaryOperator sink) {
        final int maxDigits = kind == Kind.LLAMA3 ? 3 : 1;
        int prevEnd = 0;
        int pos = 0;
        while (pos < length) {
            final int cp = cps[pos];
            final int cls = classes[pos];

            // (?i:'s|'t|'re|'ve|'m|'ll|'d)
            if (cp == '\'' && pos + 1 < length) {
                int next = lowerAscii(cps[pos + 1]);
                if (next == 's' || next == 't' || next == 'm' || next == 'd') {
                    sink.applyAsInt(prevEnd, pos + 2);
                    pos = prevEnd = pos + 2;
                    continue;
                }
                if (pos + 2 < length) {
                    int next2 = lowerAscii(cps[pos + 2]);
                    if ((next == 'r' && next2 == 'e') || (next == 'v' && next2 == 'e') || (next == 'l' && next2 == 'l')) {
                        sink.applyAsInt(prevEnd, pos + 3);
                        pos = prevEnd = pos + 3;
                        continue;
                    }
                }
            }

            // [^\r\n\p{L}\p{N}]?\p{L}+
            if (!(cp == '\r' || cp == '\n' || (cls & CodepointClass.NUMBER) != 0)) {
                if ((cls & CodepointClass.LETTER) != 0 || (classAt(classes, length, pos + 1) & CodepointClass.LETTER) != 0) {
                    pos++;
                    while ((classAt(classes, length, pos) & CodepointClass.LETTER) != 0) pos++;
                    sink.applyAsInt(prevEnd, pos);
                    prevEnd = pos;
                    continue;
                }
            }

            // \p{N}{1,3} (Llama 3) or \p{N} (Qwen2)
            if ((cls & CodepointClass.NUMBER) != 0) {
                int groupStart = pos;
                while ((classAt(classes, length, pos) & CodepointClass.NUMBER) != 0) {
                    if (++pos - groupStart >= maxDigits) {
                        sink.applyAsInt(prevEnd, pos);
                        prevEnd = groupStart = pos;
                    }
                }
                if (pos > prevEnd) sink.applyAsInt(prevEnd, pos);
                prevEnd = pos;
                continue;
            }

            // ' ?[^\s\p{L}\p{N}]+[\r\n]*'. Every position inside the fragment "has flags" in llama.cpp's table;
            // only positions past the end have none, which ends the run.
            final int wordish = CodepointClass.WHITESPACE | CodepointClass.LETTER | CodepointClass.NUMBER;
            int cls2 = cp == ' ' ? classAt(classes, length, pos + 1) : cls;
            if ((cls2 & wordish) == 0) {
                if (cp == ' ') pos++;
                while (pos < length && (classes[pos] & wordish) == 0) pos++;
                while (pos < length && (cps[pos] == '\r' || cps[pos] == '\n')) pos++;
                if (pos > prevEnd) sink.applyAsInt(prevEnd, pos);
                prevEnd = pos;
                continue;
            }

            int whitespace = 0;
            int lastNewlineEnd = 0;
            while ((classAt(classes, length, pos + whitespace) & CodepointClass.WHITESPACE) != 0) {
                int c2 = cps[pos + whitespace];
                if (c2 == '\r' || c2 == '\n') lastNewlineEnd = pos + whitespace + 1;
                whitespace++;
            }
            if (lastNewlineEnd > 0) {                                 // \s*[\r\n]+
                pos = lastNewlineEnd;
            } else if (whitespace > 1 && pos + whitespace < length) { // \s+(?!\S)
                pos += whitespace - 1;
            } else if (whitespace > 0) {                              // \s+
                pos += whitespace;
            } else {                                                  // no match: one character
                pos++;
            }
            if (pos > prevEnd) sink.applyAsInt(prevEnd, pos);
            prevEnd = pos;
        }
    }

    private static int classAt(int[] classes, int length, int pos) {
        return pos < length ? classes[pos] : 0;
    }

    /** llama.cpp lowercases with Unicode tables; no non-ASCII character lowercases to s, t, m, d, r, v, e or l. */
    private static int lowerAscii(int cp) {
        return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
    }
}
