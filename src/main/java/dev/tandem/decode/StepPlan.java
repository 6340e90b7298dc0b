package dev.tandem.decode;

import java.util.Arrays;

/**
 * One decoding step while its draft lengths are chosen: the rows committed so far to its one main-model pass, the
 * tokens expected from them, and what the step is expected to cost — that pass at its row count, plus the draft
 * passes the committed drafts need. A sequence deciding its draft weighs the marginal cost of its rows in this pass
 * (cost(R + k) − cost(R)) and of its tokens in the draft passes, against the tokens it expects them to add
 * ({@link AdaptiveDraftLength}); a sequence alone (R = 1) weighs only its own pass.
 *
 * <p>Draft passes: a draft model runs one pass per draft position for every sequence drafting that far, so the
 * j-th token of a draft adds D(n_j + 1) − D(n_j) to the step, n_j being the sequences already committed to drafting
 * a j-th token with the same model (D(0) = 0: the first one brings the whole pass). That pass is a cost the
 * sequences riding it share, and a greedy choice one sequence at a time would charge all of it to the first, which
 * then declines, and so would every later one: a batch that would gain from drafting together would never draft.
 * So a deciding sequence is charged its share of the pass with the p sequences still to decide on that drafter
 * ({@link #willDecide}) assumed to join: (D(n_j + p) − D(n_j)) / p. The step's expected time counts only what
 * was committed.
 *
 * <p>Use: {@link #begin}, then {@link #addRow} for every sequence in the pass (a plain step's row, or a
 * verification's first row), {@link #commitDraft} for the drafts whose length is set, {@link #willDecide} for each
 * sequence that will choose, then each one's {@link #commitChoice}. Reused step after step; nothing is allocated
 * after a drafter's first step. Confined to the thread that plans the steps.
 */
public final class StepPlan {
    private final PassCostModel main;
    private int rows;
    private double tokens, draftNanos;
    /** The draft models seen so far; draftRows[i][j]: sequences committed to drafting a (j+1)-th token with drafts[i]. */
    private PassCostModel[] drafts = new PassCostModel[0];
    private int[][] draftRows = new int[0][];
    /** pending[i]: sequences that will still choose a draft with drafts[i] this step. */
    private int[] pending = new int[0];

    /** A plan over {@code main}, the cost model of the main model's passes. */
    public StepPlan(PassCostModel main) {
        this.main = main;
    }

    /** The cost model of the main model's passes (whoever runs a pass records it there). */
    public PassCostModel mainCosts() { return main; }

    /** Starts planning a step: nothing committed. */
    public void begin() {
        rows = 0;
        tokens = 0;
        draftNanos = 0;
        for (int[] r : draftRows) Arrays.fill(r, 0);
        Arrays.fill(pending, 0);
    }

    /** A sequence's own row: a plain step's, or a verification's first; it brings one token. */
    public void addRow() {
        rows++;
        tokens++;
    }

    /** Rows committed to the main pass so far. */
    public int rows() { return rows; }

    /** Tokens expected from the rows committed so far. */
    public double tokens() { return tokens; }

    /** Expected nanoseconds of the step as committed: the main pass and the draft passes. */
    public double nanos() { return main.nanos(rows) + draftNanos; }

    /** What {@code k} more rows add to the main pass. */
    public double mainMarginalNanos(int k) { return main.nanos(rows + k) - main.nanos(rows); }

    /**
     * What a deciding sequence drafting its {@code j}-th token (j ≥ 1) with {@code draftCosts} is charged for the
     * draft passes: its share of the j-th pass with the sequences still to decide on that drafter; 0 for a drafter
     * that runs no model passes ({@code null}: prompt lookup costs microseconds).
     */
    public double draftMarginalNanos(PassCostModel draftCosts, int j) {
        if (draftCosts == null) return 0;
        int n = 0, riders = 1;
        for (int i = 0; i < drafts.length; i++) {
            if (drafts[i] == draftCosts) {
                n = draftRows[i][j - 1];
                riders = Math.max(1, pending[i]);
            }
        }
        return (draftCosts.nanos(n + riders) - draftCosts.nanos(n)) / riders;
    }

    /** A sequence drafting with {@code draftCosts} will choose its draft's length, after the fixed ones are committed. */
    public void willDecide(PassCostModel draftCosts) {
        if (draftCosts == null) return;
        countsOf(draftCosts);
        for (int i = 0; i < drafts.length; i++) if (drafts[i] == draftCosts) pending[i]++;
    }

    /** {@link #commitDraft} for a sequence announced by {@link #willDecide}: it has chosen. */
    public void commitChoice(PassCostModel draftCosts, int k, double extraTokens) {
        for (int i = 0; i < drafts.length; i++) if (drafts[i] == draftCosts && pending[i] > 0) pending[i]--;
        commitDraft(draftCosts, k, extraTokens);
    }

    /**
     * A sequence (its row already added) drafts {@code k} tokens with {@code draftCosts} (null: no model passes)
     * and expects {@code extraTokens} more tokens from them than its plain step would give.
     */
    public void commitDraft(PassCostModel draftCosts, int k, double extraTokens) {
        if (k <= 0) return;
        if (draftCosts != null) {
            int[] counts = countsOf(draftCosts);
            for (int j = 1; j <= k; j++) {
                draftNanos += draftCosts.nanos(counts[j - 1] + 1) - draftCosts.nanos(counts[j - 1]);   // the true addition
                counts[j - 1]++;
            }
        }
        rows += k;
        tokens += extraTokens;
    }

    private int[] countsOf(PassCostModel draftCosts) {
        for (int i = 0; i < drafts.length; i++) if (drafts[i] == draftCosts) return draftRows[i];
        // A drafter's first draft: grow the tables once (a handful of drafters per engine).
        drafts = Arrays.copyOf(drafts, drafts.length + 1);
        draftRows = Arrays.copyOf(draftRows, draftRows.length + 1);
        pending = Arrays.copyOf(pending, pending.length + 1);
        drafts[drafts.length - 1] = draftCosts;
        draftRows[draftRows.length - 1] = new int[DraftPolicy.MAX_DRAFT];
        return draftRows[draftRows.length - 1];
    }
}
