package dev.tandem.decode;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The adaptive policy's choices from fed-in costs (no clocks involved). */
class AdaptiveDraftLengthTest {
    static final long MS = 1_000_000;

    /** Feeds a world where an r-row pass costs {@code base + perRow·(r-1)} and each draft token is accepted with {@code alpha}. */
    static AdaptiveDraftLength learn(double perRow, long draftToken, double alpha, int steps) {
        AdaptiveDraftLength a = new AdaptiveDraftLength(16, 32);
        double carry = 0;
        for (int i = 0; i < steps; i++) {
            int k = a.next(100);
            if (k == 0) {
                a.plainStep(10 * MS);
                continue;
            }
            a.drafted(k, k * draftToken);
            // deterministic "acceptance": accept tokens while the running credit lasts
            int agreed = 0;
            while (agreed < k && (carry += alpha) >= 1) {
                carry -= 1;
                agreed++;
            }
            a.verified(k + 1, (long) (10 * MS + perRow * MS * k), k, agreed);
        }
        return a;
    }

    @Test
    void measuresPlainFirstThenProbes() {
        AdaptiveDraftLength a = new AdaptiveDraftLength(16, 32);
        assertEquals(0, a.next(100));
        a.plainStep(10 * MS);
        assertEquals(4, a.next(100));
        assertEquals(2, a.next(2), "never beyond the limit");
    }

    @Test
    void speculatesWhenPassesAreMemoryBoundAndDraftsCheap() {
        AdaptiveDraftLength a = learn(0.5, MS / 2, 0.8, 200);
        int k = a.next(100);
        assertTrue(k >= 3, "cheap verification and 80% acceptance should draft several tokens, got " + k);
    }

    @Test
    void turnsSpeculationOffWhenExtraRowsCostAsMuchAsSteps() {
        AdaptiveDraftLength a = learn(10, 2 * MS, 0.5, 200);
        int off = 0;
        for (int i = 0; i < 64; i++) {
            int k = a.next(100);
            if (k == 0) {
                off++;
                a.plainStep(10 * MS);
            } else {
                a.drafted(k, 2 * MS * k);
                a.verified(k + 1, (long) (10 * MS + 10 * MS * k), k, k / 2);
            }
        }
        assertTrue(off >= 60, "speculation should stay off apart from rare probes, off " + off + " of 64");
    }

    @Test
    void interpolatesUnmeasuredRowCounts() {
        AdaptiveDraftLength a = new AdaptiveDraftLength(16, 32);
        a.plainStep(10 * MS);
        a.verified(5, 14 * MS, 4, 2);
        assertEquals(12 * MS, a.verifyCost(3), 1);
        assertEquals(16 * MS, a.verifyCost(7), 1, "extrapolated along the measured slope");
    }

    /** Where speculation never pays, probes thin out: each losing probe doubles the wait, up to 16 intervals. */
    @Test
    void probesBackOffWhileTheyKeepLosing() {
        AdaptiveDraftLength a = learn(10, 2 * MS, 0.5, 200);
        int probes = 0;
        for (int i = 0; i < 4000; i++) {
            int k = a.next(100);
            if (k == 0) {
                a.plainStep(10 * MS);
            } else {
                probes++;
                a.drafted(k, 2 * MS * k);
                a.verified(k + 1, (long) (10 * MS + 10 * MS * k), k, k / 2);
            }
        }
        // Without back-off: 4000 / 32 = 125 probes. With it: 32+64+...+512 (=992 steps, 5 probes), then one per 512.
        assertTrue(probes <= 5 + 4000 / 512 + 1, "probes " + probes);
        assertTrue(probes >= 4, "it still probes now and then: " + probes);
    }
}
