package dev.tandem.decode;

/**
 * How often one drafter's draft tokens have been accepted, over every sequence it has drafted for, recent
 * verifications weighing most: where a new sequence's acceptance estimate starts ({@link AdaptiveDraftLength}). A
 * request of a few dozen tokens verifies too few drafts to learn its own rate before it ends, and a fixed prior
 * (one half) would keep it from drafting on a pair that accepts most drafts; the drafter's history is the better
 * guess, which the sequence's own verifications then correct. Same estimator as the sequence's: agreed tokens over
 * agreed tokens plus first disagreements (a geometric acceptance model). Confined to the thread that plans the steps.
 */
public final class AcceptanceHistory {
    /** Per verification: the history follows a drafter whose texts change over some dozens of drafts. */
    private static final double DECAY = 0.98;

    private double agreed, disagreed;

    /** A verification of {@code drafted} tokens agreed with the first {@code agreedTokens}. */
    public void verified(int drafted, int agreedTokens) {
        if (drafted <= 0) return;
        agreed = agreed * DECAY + agreedTokens;
        disagreed = disagreed * DECAY + (agreedTokens < drafted ? 1 : 0);
    }

    /** Whether any draft has been verified. */
    public boolean isMeasured() { return agreed + disagreed > 0; }

    /** The chance that a draft token is accepted, given the ones before it were; NaN before any verification. */
    public double acceptance() { return agreed / (agreed + disagreed); }
}
