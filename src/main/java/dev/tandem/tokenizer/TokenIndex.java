package dev.tandem.tokenizer;

/**
 * Token text to id, open addressing over the vocabulary's own strings: looks up a region of a string without
 * copying it, and stores no boxed values (a 150k-token vocabulary indexes in milliseconds).
 */
final class TokenIndex {
    private final String[] texts;
    private final int[] slots;          // id + 1, 0 = empty
    private final int mask;
    private final int shift;

    TokenIndex(String[] texts) {
        this.texts = texts;
        int capacity = Integer.highestOneBit(Math.max(4, texts.length * 2 - 1)) << 1;
        slots = new int[capacity];
        mask = capacity - 1;
        shift = 32 - Integer.numberOfTrailingZeros(capacity);
    }

    /** Adds {@code id} for {@code texts[id]}; returns the id already there for the same text, or -1. */
    int add(int id) {
        String t = texts[id];
        int i = slot(t.hashCode());
        while (slots[i] != 0) {
            int other = slots[i] - 1;
            if (texts[other].equals(t)) return other;
            i = (i + 1) & mask;
        }
        slots[i] = id + 1;
        return -1;
    }

    int find(String s) {
        return find(s, 0, s.length());
    }

    /** The id of the token whose text is {@code s[from, to)}, or -1. */
    int find(CharSequence s, int from, int to) {
        int h = 0;
        for (int k = from; k < to; k++) h = 31 * h + s.charAt(k);   // String.hashCode of the region
        int len = to - from;
        int i = slot(h);
        while (slots[i] != 0) {
            String t = texts[slots[i] - 1];
            if (t.length() == len && regionEquals(t, s, from)) return slots[i] - 1;
            i = (i + 1) & mask;
        }
        return -1;
    }

    private static boolean regionEquals(String t, CharSequence s, int from) {
        for (int k = 0; k < t.length(); k++) if (t.charAt(k) != s.charAt(from + k)) return false;
        return true;
    }

    /** Fibonacci hashing: the top bits of h * 2^32/phi, so that similar texts land far apart. */
    private int slot(int h) {
        return (h * 0x9E3779B9) >>> shift;
    }
}
