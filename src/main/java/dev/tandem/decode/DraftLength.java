package dev.tandem.decode;

/**
 * The draft length of one sequence's next step, and what it expects a draft to bring. The costs it may weigh are
 * the models' shared {@link PassCostModel}s, recorded by whoever runs the passes; the acceptance it learns from
 * {@link #verified}.
 */
public interface DraftLength {
    /**
     * Tokens to draft next, at most {@code limit}; 0 means a plain step. {@code plan} is the step so far, this
     * sequence's own row included; {@code draftCosts} the drafter's pass costs (null: it runs no model passes). The
     * caller commits the choice to the plan.
     */
    int next(int limit, StepPlan plan, PassCostModel draftCosts);

    /** Tokens a draft of {@code k} is expected to add beyond the main model's own one. */
    double expectedExtraTokens(int k);

    /** A verification found the main model agreeing with the first {@code agreed} of {@code drafted} draft tokens. */
    default void verified(int drafted, int agreed) {}
}
