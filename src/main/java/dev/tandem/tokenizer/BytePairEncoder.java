package dev.tandem.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Byte-level BPE ({@code llm_tokenizer_bpe_session}): each pre-token's UTF-8 bytes, spelled as GPT-2
 * characters, start as one symbol each; the adjacent pair with the lowest merge rank is merged (leftmost on
 * equal rank) until no pair has a rank. Symbols are ids: vocabulary ids, and further ids for merge results
 * that are not vocabulary entries, so that a merge is one table lookup.
 */
final class BytePairEncoder {
    private final Vocabulary vocab;
    private final PairRanks ranks;
    /** The symbol a merge produces, by rank. */
    private final int[] mergedSymbol;
    private final String[] merges;
    /** Texts of symbols that are not vocabulary entries (ids from {@code vocab.size()} on). */
    private final List<String> extraTexts = new ArrayList<>();
    private final Map<String, Integer> extraIds = new HashMap<>();
    private final int[] byteSymbol = new int[256];

    BytePairEncoder(Vocabulary vocab, String[] merges) {
        this.vocab = vocab;
        this.merges = merges;
        this.ranks = new PairRanks(merges.length);
        this.mergedSymbol = new int[merges.length];
        for (int b = 0; b < 256; b++) byteSymbol[b] = symbolOf(String.valueOf(ByteLevel.charOf(b)), 0, 1);
        for (int rank = 0; rank < merges.length; rank++) {
            String merge = merges[rank];
            int space = merge.indexOf(' ', 1);   // llama.cpp: word.find(' ', 1)
            if (space < 0 || space == merge.length() - 1) continue;   // a pair ("", "") no symbol matches
            ranks.putIfAbsent(symbolOf(merge, 0, space), symbolOf(merge, space + 1, merge.length()), rank);
            mergedSymbol[rank] = UNKNOWN_YET;
        }
    }

    private static final int UNKNOWN_YET = -2;

    /** The symbol a merge produces, looked up on first use (most merges are never used by a given text). */
    private int mergedSymbol(int rank) {
        int s = mergedSymbol[rank];
        if (s == UNKNOWN_YET) {
            String merge = merges[rank];
            int space = merge.indexOf(' ', 1);
            synchronized (extraIds) {
                s = symbolOf(merge.substring(0, space) + merge.substring(space + 1), 0, merge.length() - 1);
            }
            mergedSymbol[rank] = s;              // a benign race: every thread finds the same id
        }
        return s;
    }

    /** The symbol id of {@code text[from, to)}: its vocabulary id, or an id past the vocabulary. */
    private int symbolOf(String text, int from, int to) {
        int id = vocab.index.find(text, from, to);
        if (id >= 0) return id;
        synchronized (extraIds) {
            String s = text.substring(from, to);
            Integer extra = extraIds.get(s);
            if (extra != null) return extra;
            int newId = vocab.size() + extraTexts.size();
            extraTexts.add(s);
            extraIds.put(s, newId);
            return newId;
        }
    }

    /** Per-call working memory; an encoder is shared between threads, a session is not. */
    final class Session {
        private int[] symbol = new int[64], prev = new int[64], next = new int[64];
        private final MergeQueue queue = new MergeQueue();
        private final StringBuilder word = new StringBuilder();

        /** Appends the tokens of one pre-token, given as UTF-8 bytes {@code utf8[from, to)}. */
        void encodeWord(byte[] utf8, int from, int to, IntList out) {
            int n = to - from;
            if (vocab.ignoreMerges) {             // a pre-token that is a vocabulary entry is taken whole
                word.setLength(0);
                for (int i = from; i < to; i++) word.append(ByteLevel.charOf(utf8[i]));
                int whole = vocab.index.find(word, 0, word.length());
                if (whole >= 0) {
                    out.add(whole);
                    return;
                }
            }
            if (symbol.length < n) {
                symbol = new int[n];
                prev = new int[n];
                next = new int[n];
            }
            for (int i = 0; i < n; i++) {
                symbol[i] = byteSymbol[utf8[from + i] & 0xFF];
                prev[i] = i - 1;
                next[i] = i + 1 < n ? i + 1 : -1;
            }
            queue.clear();
            for (int i = 1; i < n; i++) offer(i - 1, i);

            // Invariant: live symbols form the list prev/next; a merged-away symbol has symbol[i] = -1.
            // A queued pair is stale when either side changed since it was queued; the rank of the pair now
            // at that place then differs from the queued one (ranks are unique per pair).
            while (!queue.isEmpty()) {
                queue.pop();
                int l = queue.topLeft, r = queue.topRight;
                if (symbol[l] < 0 || symbol[r] < 0 || next[l] != r) continue;
                int rank = (int) queue.topPriority;
                if (ranks.get(symbol[l], symbol[r]) != rank) continue;
                symbol[l] = mergedSymbol(rank);
                symbol[r] = -1;
                next[l] = next[r];
                if (next[r] >= 0) prev[next[r]] = l;
                offer(prev[l], l);
                offer(l, next[l]);
            }

            for (int i = 0; i >= 0; i = next[i]) {
                int s = symbol[i];
                if (s < vocab.size()) {
                    out.add(s);
                } else {
                    // Not a vocabulary entry: llama.cpp looks each byte of the symbol's text up as a one-byte
                    // string and silently drops bytes without a token.
                    String text;
                    synchronized (extraIds) {
                        text = extraTexts.get(s - vocab.size());
                    }
                    for (byte b : text.getBytes(StandardCharsets.UTF_8)) {
                        int t = b >= 0 ? vocab.index.find(String.valueOf((char) b)) : -1;
                        if (t >= 0) out.add(t);
                    }
                }
            }
        }

        private void offer(int l, int r) {
            if (l < 0 || r < 0) return;
            int rank = ranks.get(symbol[l], symbol[r]);
            if (rank >= 0) queue.push(rank, l, r, 0);
        }
    }
}
