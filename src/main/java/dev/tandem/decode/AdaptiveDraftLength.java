package dev.tandem.decode;

/**
 * Chooses the draft length k that maximises the expected tokens per nanosecond of the whole step it joins
 * ({@link StepPlan}: the rows R and the tokens N the batch has committed so far, expected to cost T):
 * <pre>
 *   rate(k) = (N + α + … + α^k) / (T + main(R + k) − main(R) + draft₁ + … + draft_k),   rate(0) = N / T
 * </pre>
 * where α is the chance that a draft token is accepted given the ones before it were (a geometric model,
 * estimated as agreed / (agreed + first disagreements), decaying so it follows the text; it starts from the drafter's
 * {@link AcceptanceHistory} over earlier sequences, worth {@link #PRIOR_WEIGHT} verifications, or from one half when
 * there is none, and a sequence with neither probes once to learn it), main(r) the measured cost
 * of an r-row main pass and draft_j what this sequence's j-th token adds to the draft model's j-th pass (both from
 * the models' shared {@link PassCostModel}s). Alone (R = N = 1, T = one plain pass) this is E(k) / (main(k+1) + k ·
 * draft(1)) against 1 / plainStep; in a large batch whose pass is compute-bound the marginal rows cost almost as
 * much as whole passes, so k = 0 wins and the sequence takes plain steps. When k = 0 wins, one draft is tried every
 * {@code probeInterval} steps to re-measure acceptance; each probe that changes nothing doubles the wait (up to
 * {@link #MAX_BACKOFF} times), since a probe costs a draft catch-up pass and a verification, and on a pair where
 * speculation cannot pay those would otherwise eat a steady share of the speed; nor is one tried within draft-max
 * tokens of the request's end. While speculating, a plain step now
 * and then keeps the one-row cost fresh.
 */
final class AdaptiveDraftLength implements DraftLength {
    private static final double ACCEPTANCE_DECAY = 0.95;
    private static final int FIRST_PROBE = 4;
    private static final int MAX_BACKOFF = 16;
    /**
     * A draft must promise this much more than the plain step's rate: the model leaves out the draft model's
     * catch-up pass after plain steps, and its costs are moving averages of passes that vary by a third on a busy
     * machine (bench/parallel-3b-q8_0.md: one-row passes of 108 to 330 ms in one run), which leaves them some 10 %
     * uncertain; near break-even the plain step is the safe choice. At 3 % the policy drafted on noise and lost
     * (0.86x at concurrency 1 on a prompt with 55 % acceptance).
     */
    static final double MIN_GAIN = 1.10;
    /** How many of its own verifications the drafter's history is worth to a new sequence's estimate. */
    static final double PRIOR_WEIGHT = 2;

    private final int draftMax, probeInterval;
    /** This sequence's acceptance, starting from its drafter's. */
    private final AcceptanceHistory own;
    private final AcceptanceHistory drafterHistory;
    private boolean verifiedOnce;
    private int stepsOff, stepsOn;
    /** Steps between probes while speculation is off; grows while probes keep losing. */
    private int interval;
    private boolean probing;

    AdaptiveDraftLength(int draftMax, int probeInterval, AcceptanceHistory history) {
        this.draftMax = draftMax;
        this.probeInterval = probeInterval;
        this.interval = probeInterval;
        this.drafterHistory = history;
        double prior = history.isMeasured() ? history.acceptance() : 0.5;
        this.own = new AcceptanceHistory(ACCEPTANCE_DECAY, prior, PRIOR_WEIGHT);
    }

    @Override
    public int next(int limit, StepPlan plan, PassCostModel draftCosts) {
        int kMax = Math.min(draftMax, limit);
        if (kMax <= 0) return 0;
        PassCostModel main = plan.mainCosts();
        if (!main.isMeasured()) return 0;                                         // measure the baseline first
        if ((draftCosts != null && !draftCosts.isMeasured()) || main.largestMeasured() < 2
                || (!verifiedOnce && !drafterHistory.isMeasured())) return Math.min(kMax, FIRST_PROBE);
        double alpha = acceptance(), tokens = plan.tokens(), nanos = plan.nanos();
        int bestSpeculative = 1;
        double bestSpeculativeRate = 0;
        // Invariant at the top of each turn: extra = α + … + α^(k-1), drafting = draft₁ + … + draft_(k-1).
        double extra = 0, power = 1, drafting = 0;
        for (int k = 1; k <= kMax; k++) {
            power *= alpha;
            extra += power;
            drafting += plan.draftMarginalNanos(draftCosts, k);
            double r = (tokens + extra) / (nanos + plan.mainMarginalNanos(k) + drafting);
            if (r > bestSpeculativeRate) {
                bestSpeculativeRate = r;
                bestSpeculative = k;
            }
        }
        if (bestSpeculativeRate <= MIN_GAIN * tokens / nanos) {
            stepsOn = 0;
            if (probing) {          // the last probe did not pay: wait longer before the next
                probing = false;
                interval = Math.min(interval * 2, probeInterval * MAX_BACKOFF);
            }
            // A probe in a request's last tokens measures a draft that could not pay back before the end.
            if (++stepsOff >= interval && limit >= draftMax) {
                stepsOff = 0;
                probing = true;
                return bestSpeculative;
            }
            return 0;
        }
        probing = false;
        interval = probeInterval;
        stepsOff = 0;
        if (++stepsOn >= 4 * probeInterval) {
            stepsOn = 0;
            return 0;
        }
        return bestSpeculative;
    }

    /** α + … + α^k: a draft of k expects this many tokens beyond the main model's own. */
    @Override
    public double expectedExtraTokens(int k) {
        double alpha = acceptance(), extra = 0, power = 1;
        for (int i = 1; i <= k; i++) {
            power *= alpha;
            extra += power;
        }
        return extra;
    }

    double acceptance() { return own.acceptance(); }

    @Override
    public void verified(int drafted, int agreed) {
        verifiedOnce = true;
        own.verified(drafted, agreed);
    }
}
