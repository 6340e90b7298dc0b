package dev.tandem.decode;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The adaptive policy's choices for a sequence alone, from fed-in costs (no clocks involved). The pass costs are
 * the models' shared {@link PassCostModel}s now, fed here as the generator would; the decisions are the ones the
 * policy made when it measured them itself.
 */
class AdaptiveDraftLengthTest {
    static final long MS = 1_000_000;

    /** A policy, the main and draft models' pass costs, and the one-sequence plan a lone generator uses. */
    record World(AdaptiveDraftLength a, PassCostModel main, PassCostModel draft, StepPlan plan) {
        World() { this(new AdaptiveDraftLength(16, 32, new AcceptanceHistory()), new PassCostModel(64), new PassCostModel(64)); }

        World(AdaptiveDraftLength a, PassCostModel main, PassCostModel draft) { this(a, main, draft, new StepPlan(main)); }

        int next(int limit) {
            plan.begin();
            plan.addRow();
            return a.next(limit, plan, draft);
        }

        /** A step of k drafted tokens whose verification agreed with {@code agreed}, in a world where an r-row pass costs 10 ms + perRow·(r-1). */
        void step(int k, double perRow, long draftToken, int agreed) {
            if (k == 0) {
                main.record(1, 10 * MS);
                return;
            }
            for (int i = 0; i < k; i++) draft.record(1, draftToken);
            main.record(k + 1, (long) (10 * MS + perRow * MS * k));
            a.verified(k, agreed);
        }
    }

    /** Feeds a world where an r-row pass costs {@code 10 ms + perRow·(r-1)} and each draft token is accepted with {@code alpha}. */
    static World learn(double perRow, long draftToken, double alpha, int steps) {
        World w = new World();
        double carry = 0;
        for (int i = 0; i < steps; i++) {
            int k = w.next(100);
            // deterministic "acceptance": accept tokens while the running credit lasts
            int agreed = 0;
            while (agreed < k && (carry += alpha) >= 1) {
                carry -= 1;
                agreed++;
            }
            w.step(k, perRow, draftToken, agreed);
        }
        return w;
    }

    @Test
    void measuresPlainFirstThenProbes() {
        World w = new World();
        assertEquals(0, w.next(100));
        w.main().record(1, 10 * MS);
        assertEquals(4, w.next(100), "the draft model's cost is not known yet");
        assertEquals(2, w.next(2), "never beyond the limit");
    }

    @Test
    void speculatesWhenPassesAreMemoryBoundAndDraftsCheap() {
        World w = learn(0.5, MS / 2, 0.8, 200);
        int k = w.next(100);
        assertTrue(k >= 3, "cheap verification and 80% acceptance should draft several tokens, got " + k);
    }

    @Test
    void turnsSpeculationOffWhenExtraRowsCostAsMuchAsSteps() {
        World w = learn(10, 2 * MS, 0.5, 200);
        int off = 0;
        for (int i = 0; i < 64; i++) {
            int k = w.next(100);
            if (k == 0) off++;
            w.step(k, 10, 2 * MS, k / 2);
        }
        assertTrue(off >= 60, "speculation should stay off apart from rare probes, off " + off + " of 64");
    }

    @Test
    void expectsTheGeometricSumOfItsAcceptance() {
        World w = new World();
        assertEquals(0.5 + 0.25 + 0.125, w.a().expectedExtraTokens(3), 1e-9, "the prior: α = 1/2");
        assertEquals(0, w.a().expectedExtraTokens(0));
    }

    /** Where speculation never pays, probes thin out: each losing probe doubles the wait, up to 16 intervals. */
    @Test
    void probesBackOffWhileTheyKeepLosing() {
        World w = learn(10, 2 * MS, 0.5, 200);
        int probes = 0;
        for (int i = 0; i < 4000; i++) {
            int k = w.next(100);
            if (k > 0) probes++;
            w.step(k, 10, 2 * MS, k / 2);
        }
        // Without back-off: 4000 / 32 = 125 probes. With it: 32+64+...+512 (=992 steps, 5 probes), then one per 512.
        assertTrue(probes <= 5 + 4000 / 512 + 1, "probes " + probes);
        assertTrue(probes >= 4, "it still probes now and then: " + probes);
    }

    /** A drafter whose every verification so far agreed with {@code agreed} of {@code drafted} tokens, {@code times} times. */
    static AcceptanceHistory history(int times, int drafted, int agreed) {
        AcceptanceHistory h = new AcceptanceHistory();
        for (int i = 0; i < times; i++) h.verified(drafted, agreed);
        return h;
    }

    /** Measured costs: a one-row pass 10 ms, each further row {@code perRow} ms (1 to 6 rows), a draft token 0.5 ms. */
    static World measured(AcceptanceHistory history, double perRow) {
        World w = new World(new AdaptiveDraftLength(16, 32, history), new PassCostModel(64), new PassCostModel(64));
        for (int r = 1; r <= 6; r++) w.main().record(r, (long) ((10 + perRow * (r - 1)) * MS));
        w.draft().record(1, MS / 2);
        return w;
    }

    /**
     * A short request must not spend its few steps learning what its drafter already knows: it starts from the
     * drafter's acceptance over earlier sequences, drafting at once behind a drafter that is usually right and not
     * at all behind one that is usually wrong. With no history anywhere it probes to learn.
     */
    @Test
    void aNewSequenceStartsFromItsDraftersAcceptance() {
        // An extra row costs half a pass: at α = 0.9 four tokens pay (4.1 tokens for 32 ms against 1 per 10 ms), at α = 0.3 nothing does.
        assertTrue(measured(history(20, 4, 4), 5).next(100) >= 3, "a drafter whose drafts are accepted");
        assertEquals(0, measured(history(20, 4, 0), 5).next(100), "a drafter whose first token is rejected every time");
        assertEquals(4, measured(new AcceptanceHistory(), 5).next(100), "nothing known: a first probe");
    }

    /** Near break-even the plain step wins: a draft must promise some 10 % more than the plain rate. */
    @Test
    void draftsOnlyForAClearGain() {
        // α = 1/2 from the history. One draft token: 1.5 tokens for 10 + perRow + 0.5 ms, against 1 token per 10 ms.
        assertEquals(0, measured(history(50, 2, 1), 3.5).next(100), "1.5 tokens in 14 ms is 7 % faster: not enough");
        assertEquals(1, measured(history(50, 2, 1), 2.5).next(100), "1.5 tokens in 13 ms is 15 % faster");
    }

    /** A probe falls due every 32 plain steps, but not within draft-max tokens of the end, where it could not pay back. */
    @Test
    void noProbeNearTheEndOfARequest() {
        World nearEnd = measured(history(20, 4, 0), 5), early = measured(history(20, 4, 0), 5);
        int nearEndProbes = 0, earlyProbes = 0;
        for (int i = 0; i < 64; i++) {
            if (nearEnd.next(15) > 0) nearEndProbes++;      // limit 15 < draft-max 16
            if (early.next(100) > 0) earlyProbes++;
        }
        assertEquals(0, nearEndProbes);
        assertTrue(earlyProbes >= 1, "with tokens to spare it still probes: " + earlyProbes);
    }
}
