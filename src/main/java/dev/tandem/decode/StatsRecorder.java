package dev.tandem.decode;

/** Counts and clocks of one generation while it runs; {@link #finish} freezes them into {@link GenerationStats}. */
final class StatsRecorder {
    private final long start = System.nanoTime();
    private long prefillEnd, firstToken, end;
    private final int promptTokens;
    int generated;
    long drafted, accepted, rejected, ignored, passes;
    long draftNanos, verifyNanos;
    private final int[] histogram;

    StatsRecorder(int promptTokens, int draftMax) {
        this.promptTokens = promptTokens;
        this.histogram = new int[draftMax + 1];
    }

    void prefillDone() { prefillEnd = System.nanoTime(); }

    void tokenEmitted() {
        if (generated++ == 0) firstToken = System.nanoTime();
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

    GenerationStats finish() {
        end = System.nanoTime();
        return new GenerationStats(promptTokens, (prefillEnd - start) / 1e6, generated, (end - prefillEnd) / 1e6,
                (firstToken - start) / 1e6, drafted, accepted, rejected, ignored, passes, histogram,
                draftNanos / 1e6, verifyNanos / 1e6);
    }
}
