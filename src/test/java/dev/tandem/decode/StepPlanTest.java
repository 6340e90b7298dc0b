package dev.tandem.decode;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The accounting of a step's rows, tokens and expected time while its drafts are chosen. */
class StepPlanTest {
    static final long MS = 1_000_000;

    /** Main passes: 10 ms up to 8 rows, then 1.25 ms a row; draft passes: 1 ms plus 0.5 ms a row. */
    static StepPlan plan(PassCostModel draft) {
        PassCostModel main = new PassCostModel(64);
        for (int r = 1; r <= 64; r++) main.record(r, (long) (10 * MS * Math.max(1, r / 8.0)));
        for (int r = 1; r <= 16; r++) draft.record(r, MS + r * MS / 2);
        return new StepPlan(main);
    }

    @Test
    void rowsTokensAndTimeOfWhatWasCommitted() {
        PassCostModel draft = new PassCostModel(16);
        StepPlan p = plan(draft);
        p.begin();
        for (int i = 0; i < 8; i++) p.addRow();
        assertEquals(8, p.rows());
        assertEquals(8, p.tokens());
        assertEquals(10 * MS, p.nanos(), 1);
        assertEquals(5 * MS, p.mainMarginalNanos(4), 1, "12 rows cost 15 ms");
        p.commitDraft(draft, 2, 1.5);
        assertEquals(10, p.rows());
        assertEquals(9.5, p.tokens());
        // Two draft passes of one row each: 1.5 ms each.
        assertEquals(12.5 * MS + 3 * MS, p.nanos(), 1);
        p.commitDraft(draft, 3, 2);
        // Passes 1 and 2 gain a row (0.5 ms each), pass 3 is new (1.5 ms).
        assertEquals(16.25 * MS + 3 * MS + 2.5 * MS, p.nanos(), 1);
        p.begin();
        assertEquals(0, p.rows());
        assertEquals(0, p.nanos());
        p.addRow();
        assertEquals(1.5 * MS, p.draftMarginalNanos(draft, 1), 1, "begin forgot the draft passes");
    }

    @Test
    void aDecidingSequenceIsChargedItsShareOfADraftPassWithThoseStillToDecide() {
        PassCostModel draft = new PassCostModel(16);
        StepPlan p = plan(draft);
        p.begin();
        for (int i = 0; i < 4; i++) {
            p.addRow();
            p.willDecide(draft);
        }
        // Four riders of a pass costing 1 + 4 · 0.5 = 3 ms: 0.75 ms each.
        assertEquals(0.75 * MS, p.draftMarginalNanos(draft, 1), 1);
        p.commitChoice(draft, 1, 0.5);
        assertEquals(1.5 * MS, p.nanos() - 10 * MS, 1, "the step counts the pass as it stands: one row");
        // Three still to decide, one row committed: (D(4) − D(1)) / 3 = 0.5 ms.
        assertEquals(0.5 * MS, p.draftMarginalNanos(draft, 1), 1);
        assertEquals(2.5 * MS / 3, p.draftMarginalNanos(draft, 2), 1, "nobody drafts a second token yet: (D(3) − D(0)) / 3");
        assertEquals(0, p.draftMarginalNanos(null, 1), "prompt lookup runs no passes");
    }
}
