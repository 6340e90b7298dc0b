package dev.tandem.engine;

import java.util.List;

/**
 * Finds stop strings in generated text as it streams. Text that might be the start of a stop string is held
 * back until the next token decides, so a stream never shows a prefix of a stop string that then stops it.
 * Not thread-safe; one per sequence.
 */
final class StopStrings {
    private final List<String> stops;
    private final StringBuilder held = new StringBuilder();
    private boolean matched;

    StopStrings(List<String> stops) {
        this.stops = stops;
    }

    /** Whether a stop string has been found; the text before it was the last returned by {@link #feed}. */
    boolean matched() { return matched; }

    /** Adds generated text and returns what can be shown now. */
    String feed(String text) {
        if (stops.isEmpty()) return text;
        held.append(text);
        int at = -1;
        for (String s : stops) {
            int i = held.indexOf(s);
            if (i >= 0 && (at < 0 || i < at)) at = i;
        }
        if (at >= 0) {
            matched = true;
            String before = held.substring(0, at);
            held.setLength(0);
            return before;
        }
        int keep = 0;   // the longest tail of `held` that some stop string starts with
        for (String s : stops) {
            for (int k = Math.min(s.length() - 1, held.length()); k > keep; k--) {
                if (endsWith(held, s, k)) {
                    keep = k;
                    break;
                }
            }
        }
        String out = held.substring(0, held.length() - keep);
        held.delete(0, held.length() - keep);
        return out;
    }

    /** Releases held-back text at the end of a generation that no stop string ended. */
    String flush() {
        String out = held.toString();
        held.setLength(0);
        return out;
    }

    private static boolean endsWith(CharSequence text, String stop, int prefixLength) {
        int from = text.length() - prefixLength;
        for (int i = 0; i < prefixLength; i++) if (text.charAt(from + i) != stop.charAt(i)) return false;
        return true;
    }
}
