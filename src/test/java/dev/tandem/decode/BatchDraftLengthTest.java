package dev.tandem.decode;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Adaptive draft lengths chosen for a batch, as the engine's scheduler plans a step (every sequence's row, the
 * fixed drafts, then each adaptive sequence in turn: {@link SpeculativeStep#planDraft}), from fed-in pass costs.
 */
class BatchDraftLengthTest {
    static final long MS = 1_000_000;
    static final int ROWS = 8 * 17;

    /** Main passes cost 10 ms up to 8 rows (one read of the weights), then grow with the rows (compute-bound). */
    static PassCostModel knee() {
        PassCostModel m = new PassCostModel(ROWS);
        for (int r = 1; r <= ROWS; r++) m.record(r, (long) (10 * MS * Math.max(1, r / 8.0)));
        return m;
    }

    /** Every pass costs {@code nanos}, whatever its rows. */
    static PassCostModel flat(long nanos) {
        PassCostModel m = new PassCostModel(ROWS);
        for (int r = 1; r <= ROWS; r++) m.record(r, nanos);
        return m;
    }

    /** A policy whose verifications agreed with 4 of 5 draft tokens, over and over: α ≈ 0.8. */
    static AdaptiveDraftLength accepting() {
        AdaptiveDraftLength a = new AdaptiveDraftLength(16, 32, new AcceptanceHistory());
        for (int i = 0; i < 200; i++) a.verified(5, 4);
        assertEquals(0.8, a.acceptance(), 0.01);
        return a;
    }

    /** One step's choices of {@code adaptive} sequences beside {@code plain} plain ones, in batch order. */
    static int[] plan(StepPlan plan, PassCostModel draft, int plain, List<AdaptiveDraftLength> adaptive) {
        plan.begin();
        for (int i = 0; i < plain + adaptive.size(); i++) plan.addRow();
        for (int i = 0; i < adaptive.size(); i++) plan.willDecide(draft);
        int[] k = new int[adaptive.size()];
        for (int i = 0; i < k.length; i++) {
            AdaptiveDraftLength a = adaptive.get(i);
            k[i] = a.next(100, plan, draft);
            plan.commitChoice(draft, k[i], a.expectedExtraTokens(k[i]));
        }
        return k;
    }

    static List<AdaptiveDraftLength> accepting(int n) {
        List<AdaptiveDraftLength> out = new ArrayList<>();
        for (int i = 0; i < n; i++) out.add(accepting());
        return out;
    }

    @Test
    void eightSequencesTakePlainStepsWhereTheirPassIsAlreadyFull() {
        PassCostModel draft = flat(2 * MS);
        StepPlan plan = new StepPlan(knee());
        int[] k = plan(plan, draft, 0, accepting(8));
        for (int i = 0; i < 8; i++) assertEquals(0, k[i], "sequence " + i);
        assertEquals(8, plan.rows());
    }

    @Test
    void oneSequenceWithTheSameAcceptanceAndCostsDraftsAlone() {
        PassCostModel draft = flat(2 * MS);
        int[] k = plan(new StepPlan(knee()), draft, 0, accepting(1));
        // Its drafted rows ride the one-row pass for free; the rate peaks at 4 drafts: 3.36 tokens in 10 + 4 · 2 ms.
        assertEquals(4, k[0]);
    }

    @Test
    void plainSequencesFillThePassToo() {
        PassCostModel draft = flat(MS / 2);
        int[] k = plan(new StepPlan(knee()), draft, 7, accepting(1));
        assertEquals(0, k[0], "seven plain rows already fill the pass");
        k = plan(new StepPlan(knee()), draft, 3, accepting(1));
        assertEquals(4, k[0], "beside three plain rows, four drafts ride free");
    }

    /**
     * With passes whose cost does not grow with their rows all eight draft. Charged the whole 2 ms draft pass per
     * token alone, the first would decline (and so every later one); its share with those still to decide pays.
     */
    @Test
    void onAFlatCostCurveTheyAllDraft() {
        PassCostModel draft = flat(2 * MS);
        StepPlan plan = new StepPlan(flat(10 * MS));
        int[] k = plan(plan, draft, 0, accepting(8));
        for (int i = 0; i < 8; i++) assertTrue(k[i] > 0, "sequence " + i + " drafted " + k[i]);
        assertTrue(plan.tokens() / plan.nanos() > 8.0 / (10 * MS), "the step's expected rate beats eight plain rows");
    }

    /** Prompt lookup (no draft passes) beside a fixed draft: the fixed draft's rows count, and it keeps its length. */
    @Test
    void fixedDraftsCommittedFirstCountAgainstTheAdaptiveOnes() {
        StepPlan plan = new StepPlan(knee());
        plan.begin();
        plan.addRow();
        plan.addRow();
        AdaptiveDraftLength a = accepting();
        assertEquals(6, a.next(100, plan, null), "beside one plain row, six drafts ride the pass free");

        plan.begin();
        plan.addRow();
        plan.addRow();
        FixedDraftLength fixed = new FixedDraftLength(8);
        int f = fixed.next(100, plan, null);
        plan.commitDraft(null, f, fixed.expectedExtraTokens(f));
        assertEquals(10, plan.rows(), "the fixed draft keeps its length");
        assertEquals(0, a.next(100, plan, null), "beside a fixed draft of eight each row costs 1.25 ms: two more tokens "
                + "would gain a few per cent, under the policy's margin");
    }
}
