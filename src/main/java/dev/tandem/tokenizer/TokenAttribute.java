package dev.tandem.tokenizer;

import java.util.EnumSet;
import java.util.Set;

/**
 * What kind of vocabulary entry a token is, with llama.cpp's attribute bits ({@code llama_token_attr}).
 * A token can carry several (llama.cpp adds CONTROL to end-of-turn tokens found by their text, so Qwen's
 * ordinary {@code </s>} is NORMAL and CONTROL); {@link Tokenizer#attributes} gives all of them.
 */
public enum TokenAttribute {
    UNDEFINED(0), UNKNOWN(1), UNUSED(1 << 1), NORMAL(1 << 2), CONTROL(1 << 3), USER_DEFINED(1 << 4), BYTE(1 << 5);

    /** The bit of this attribute in llama.cpp's mask. */
    final int bit;

    TokenAttribute(int bit) {
        this.bit = bit;
    }

    /** The attribute bits llama.cpp gives a GGUF {@code tokenizer.ggml.token_type} value. */
    static int bitsOfTokenType(int tokenType) {
        return switch (tokenType) {
            case 1 -> NORMAL.bit;
            case 2 -> UNKNOWN.bit;
            case 3 -> CONTROL.bit;
            case 4 -> USER_DEFINED.bit;
            case 5 -> UNUSED.bit;
            case 6 -> BYTE.bit;
            default -> UNDEFINED.bit;
        };
    }

    static Set<TokenAttribute> setOf(int bits) {
        EnumSet<TokenAttribute> set = EnumSet.noneOf(TokenAttribute.class);
        for (TokenAttribute a : values()) {
            if (a.bit != 0 && (bits & a.bit) != 0) set.add(a);
        }
        if (set.isEmpty()) set.add(UNDEFINED);
        return set;
    }

    /**
     * The one attribute that decides how a token behaves: UNUSED (never produced, decodes to nothing) before
     * CONTROL (special text, only with parse_special) before USER_DEFINED, UNKNOWN, BYTE, NORMAL.
     */
    static TokenAttribute primaryOf(int bits) {
        for (TokenAttribute a : new TokenAttribute[] {UNUSED, CONTROL, USER_DEFINED, UNKNOWN, BYTE, NORMAL}) {
            if ((bits & a.bit) != 0) return a;
        }
        return UNDEFINED;
    }
}
