package dev.tandem.tokenizer;

import java.util.ArrayList;
import java.util.List;

/**
 * Cuts text at the special tokens written in it, before any other tokenisation
 * ({@code tokenizer_st_partition}): the special tokens are tried one after another, longest text first, and
 * each one splits every remaining raw-text fragment at each of its exact occurrences (leftmost first). With
 * {@code parseSpecial} false, CONTROL and UNKNOWN tokens are skipped but USER_DEFINED tokens still match.
 */
final class SpecialTokenSplitter {
    /** A piece of the input: a token (when {@code token >= 0}) or the raw text {@code [start, end)}. */
    record Fragment(int token, int start, int end) {
        boolean isToken() {
            return token >= 0;
        }
    }

    private final Vocabulary vocab;

    SpecialTokenSplitter(Vocabulary vocab) {
        this.vocab = vocab;
    }

    List<Fragment> split(String text, boolean parseSpecial) {
        List<Fragment> fragments = new ArrayList<>();
        if (text.isEmpty()) return fragments;
        fragments.add(new Fragment(-1, 0, text.length()));
        int skipped = TokenAttribute.CONTROL.bit | TokenAttribute.UNKNOWN.bit;
        for (int id : vocab.specialTokens) {
            if (!parseSpecial && (vocab.attr[id] & skipped) != 0) continue;
            String special = vocab.text[id];
            List<Fragment> result = null;               // allocated on the first match only
            for (int f = 0; f < fragments.size(); f++) {
                Fragment fragment = fragments.get(f);
                int at = fragment.isToken() ? -1 : indexIn(text, special, fragment.start(), fragment.end());
                if (at < 0) {
                    if (result != null) result.add(fragment);
                    continue;
                }
                if (result == null) result = new ArrayList<>(fragments.subList(0, f));
                int from = fragment.start();
                while (at >= 0) {
                    if (at > from) result.add(new Fragment(-1, from, at));
                    result.add(new Fragment(id, at, at + special.length()));
                    from = at + special.length();
                    at = indexIn(text, special, from, fragment.end());
                }
                if (from < fragment.end()) result.add(new Fragment(-1, from, fragment.end()));
            }
            if (result != null) fragments = result;
        }
        return fragments;
    }

    /** The first occurrence of {@code needle} inside {@code text[from, end)}, or -1 (never looks past end). */
    private static int indexIn(String text, String needle, int from, int end) {
        char first = needle.charAt(0);
        for (int i = from, last = end - needle.length(); i <= last; i++) {
            if (text.charAt(i) == first && text.startsWith(needle, i)) return i;
        }
        return -1;
    }
}
