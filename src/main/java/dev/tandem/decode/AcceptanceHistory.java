package dev.tandem.decode;

/**
 * How often draft tokens have been accepted, recent verifications weighing most: agreed tokens over agreed tokens
 * plus first disagreements (a geometric acceptance model), both counts decaying per verification. Two kinds: one per
 * drafter, over every sequence it has drafted for ({@link Drafter#acceptance()}), and one per adaptive sequence
 * ({@link AdaptiveDraftLength}), which starts from its drafter's: a request of a few dozen tokens verifies too few
 * drafts to learn its own rate before it ends, and a fixed prior (one half) would keep it from drafting on a pair
 * that accepts most drafts; the drafter's history is the better guess, which the sequence's own verifications then
 * correct. Confined to the thread that plans the steps.
 */
public final class AcceptanceHistory {
    /** A drafter's decay per verification: it follows a drafter whose texts change over some dozens of drafts. */
    private static final double DRAFTER_DECAY = 0.98;

    private final double decay;
    private double agreed, disagreed;

    /** A drafter's history, before any verification. */
    public AcceptanceHistory() {
        this(DRAFTER_DECAY, 0, 0);
    }

    /** Acceptance {@code prior}, worth {@code weight} verifications; each verification multiplies the counts by {@code decay}. */
    AcceptanceHistory(double decay, double prior, double weight) {
        this.decay = decay;
        this.agreed = weight * prior;
        this.disagreed = weight * (1 - prior);
    }

    /** A verification of {@code drafted} tokens agreed with the first {@code agreedTokens}. */
    public void verified(int drafted, int agreedTokens) {
        if (drafted <= 0) return;
        agreed = agreed * decay + agreedTokens;
        disagreed = disagreed * decay + (agreedTokens < drafted ? 1 : 0);
    }

    /** Whether any draft has been verified, or a prior given. */
    public boolean isMeasured() { return agreed + disagreed > 0; }

    /** The chance that a draft token is accepted, given the ones before it were; NaN before any verification. */
    public double acceptance() { return agreed / (agreed + disagreed); }
}
