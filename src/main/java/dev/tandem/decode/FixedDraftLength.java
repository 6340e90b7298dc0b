package dev.tandem.decode;

/**
 * The draft length the user asked for ({@link DraftPolicy.Fixed}), whatever the batch; it only estimates what its
 * drafts bring (a moving average of the agreed tokens per verification), so that the sequences planning after it
 * in a step know the rate of the batch they join.
 */
final class FixedDraftLength implements DraftLength {
    private static final double WEIGHT = 0.1;
    private final int draftMax;
    /** Moving average of agreed draft tokens per verification; NaN before the first. */
    private double agreed = Double.NaN;

    FixedDraftLength(int draftMax) {
        this.draftMax = draftMax;
    }

    @Override
    public int next(int limit, StepPlan plan, PassCostModel draftCosts) { return Math.min(draftMax, limit); }

    /** Before any verification, half the draft (what acceptance ½ per token would about give for short drafts). */
    @Override
    public double expectedExtraTokens(int k) { return Math.min(k, Double.isNaN(agreed) ? k / 2.0 : agreed); }

    @Override
    public void verified(int drafted, int agreedTokens) {
        agreed = Double.isNaN(agreed) ? agreedTokens : agreed + WEIGHT * (agreedTokens - agreed);
    }
}
