package dev.tandem.tokenizer;

/**
 * The character classes the pre-tokenizer regexes use, as llama.cpp's tables define them: {@code \p{L}} is
 * the Unicode categories Lu Ll Lt Lm Lo, {@code \p{N}} is Nd Nl No, and {@code \s} is the Unicode White_Space
 * property. Java's {@link Character#isWhitespace} is not that set (it leaves out U+00A0, U+2007, U+202F and
 * adds U+001C..U+001F), so the whitespace set is spelled out here. Categories come from the JDK's Unicode
 * tables; llama.cpp's were generated from an earlier Unicode version, so the two can only differ for
 * characters assigned since then.
 */
final class CodepointClass {
    static final int LETTER = 1, NUMBER = 2, WHITESPACE = 4;

    private CodepointClass() {}

    static int of(int cp) {
        if (cp < 0x80) return ASCII[cp];
        return ofCategory(cp) | (isUnicodeWhitespace(cp) ? WHITESPACE : 0);
    }

    private static int ofCategory(int cp) {
        return switch (Character.getType(cp)) {
            case Character.UPPERCASE_LETTER, Character.LOWERCASE_LETTER, Character.TITLECASE_LETTER,
                 Character.MODIFIER_LETTER, Character.OTHER_LETTER -> LETTER;
            case Character.DECIMAL_DIGIT_NUMBER, Character.LETTER_NUMBER, Character.OTHER_NUMBER -> NUMBER;
            default -> 0;
        };
    }

    /** The White_Space property of Unicode's PropList.txt. */
    static boolean isUnicodeWhitespace(int cp) {
        return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680
                || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F
                || cp == 0x205F || cp == 0x3000;
    }

    private static final int[] ASCII = new int[0x80];

    static {
        for (int c = 0; c < 0x80; c++) ASCII[c] = ofCategory(c) | (isUnicodeWhitespace(c) ? WHITESPACE : 0);
    }
}
