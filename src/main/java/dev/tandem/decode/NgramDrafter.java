package dev.tandem.decode;

/**
 * Prompt lookup: no model, only the text so far. Finds the most recent earlier occurrence of the context's last
 * n tokens (n from {@code maxN} down to {@code minN}) and proposes what followed it. Proposals are certain
 * (q one-hot), so {@code pMin} does not apply; speculative sampling stays lossless with a one-hot q.
 */
public final class NgramDrafter implements Drafter {
    private final int minN, maxN;
    private final AcceptanceHistory acceptance = new AcceptanceHistory();

    public NgramDrafter(int minN, int maxN) {
        if (minN < 1 || maxN < minN) throw new IllegalArgumentException("n-gram sizes must satisfy 1 <= min <= max, got " + minN + ".." + maxN);
        this.minN = minN;
        this.maxN = maxN;
    }

    /** Matches of 3 tokens down to 1. */
    public NgramDrafter() {
        this(1, 3);
    }

    @Override
    public AcceptanceHistory acceptance() { return acceptance; }

    @Override
    public Session open(Context context) {
        return new Session() {
            @Override public void prefill(int[] tokens, int length) {}

            @Override
            public void propose(int[] ctx, int length, int max, float pMin, Draft out) {
                out.clear();
                for (int n = Math.min(maxN, length - 1); n >= minN; n--) {
                    int start = lastEarlierMatch(ctx, length, n);
                    if (start < 0) continue;
                    // The match ends at start+n <= length-1, so at least one continuation token exists.
                    for (int p = start + n; p < length && out.size() < max; p++) out.pushCertain(ctx[p]);
                    return;
                }
            }

            @Override public void rollback(int length) {}

            @Override public void close() {}
        };
    }

    /** Start of the latest {@code ctx[s..s+n)} equal to the last n tokens with {@code s + n < length}; -1 if none. */
    static int lastEarlierMatch(int[] ctx, int length, int n) {
        int suffix = length - n;
        for (int s = suffix - 1; s >= 0; s--) {
            int i = 0;
            while (i < n && ctx[s + i] == ctx[suffix + i]) i++;
            if (i == n) return s;
        }
        return -1;
    }
}
