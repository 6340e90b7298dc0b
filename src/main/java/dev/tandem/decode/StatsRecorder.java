package dev.tandem.decode;

/**
 * Clocks and counts of one whole generation while it runs: the {@link DraftCounts} of its drafts (all zero for
 * plain decoding) plus the prefill, first-token and end times; {@link #finish} freezes them into
 * {@link GenerationStats}.
 */
final class StatsRecorder extends DraftCounts {
    private final long start = System.nanoTime();
    private long prefillEnd, firstToken, end;
    private final int promptTokens;
    int generated;

    StatsRecorder(int promptTokens, int draftMax) {
        super(draftMax);
        this.promptTokens = promptTokens;
    }

    void prefillDone() { prefillEnd = System.nanoTime(); }

    void tokenEmitted() {
        if (generated++ == 0) firstToken = System.nanoTime();
    }

    GenerationStats finish() {
        end = System.nanoTime();
        return new GenerationStats(promptTokens, (prefillEnd - start) / 1e6, generated, (end - prefillEnd) / 1e6,
                (firstToken - start) / 1e6, drafted, accepted, rejected, ignored, passes, histogram,
                draftNanos / 1e6, verifyNanos / 1e6);
    }
}
