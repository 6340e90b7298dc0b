package dev.tandem.decode;

/**
 * What became of one sequence's drafted tokens, and the time drafting and verifying took. Once every draft has
 * been verified, {@code drafted = accepted + rejected + ignored}, and the histogram of accepted lengths (index =
 * draft tokens emitted after a verification pass) sums to {@code passes}.
 */
class DraftCounts {
    long drafted, accepted, rejected, ignored, passes;
    long draftNanos, verifyNanos;
    final int[] histogram;

    DraftCounts(int draftMax) {
        this.histogram = new int[draftMax + 1];
    }

    /**
     * A verification pass of a {@code draftLength}-token draft agreed with its first {@code agreed} tokens, of
     * which the first {@code emitted} were emitted before a stop (the rest count as ignored).
     */
    void verified(int draftLength, int agreed, int emitted) {
        passes++;
        histogram[emitted]++;
        accepted += emitted;
        ignored += agreed - emitted;
        rejected += draftLength - agreed;
    }
}
