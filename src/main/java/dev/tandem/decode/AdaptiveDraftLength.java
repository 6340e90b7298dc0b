package dev.tandem.decode;

import java.util.Arrays;

/**
 * Chooses the draft length k that maximises expected tokens per nanosecond:
 * <pre>
 *   rate(k) = E(k) / (k · draftStep + verify(k+1)),   E(k) = 1 + α + … + α^k,   rate(0) = 1 / plainStep
 * </pre>
 * where α is the chance that a draft token is accepted given the ones before it were (a geometric model,
 * estimated as agreed / (agreed + first disagreements)), draftStep the measured cost of one drafted token and
 * verify(r) the measured cost of an r-row main pass (interpolated between measured row counts, extrapolated
 * linearly). All measurements are exponential moving averages, so the choice follows drifting costs. When k = 0
 * wins, speculation is off, and one draft is tried every {@code probeInterval} steps to see whether that changed;
 * each probe that changes nothing doubles the wait (up to {@link #MAX_BACKOFF} times), since a probe costs a
 * draft catch-up pass and a verification, and on a pair where speculation cannot pay those would otherwise eat
 * a steady share of the speed. While speculating, a plain step now and then keeps plainStep fresh.
 */
final class AdaptiveDraftLength implements DraftLength {
    private static final double TIME_WEIGHT = 0.2, ACCEPTANCE_DECAY = 0.95;
    private static final int FIRST_PROBE = 4;
    private static final int MAX_BACKOFF = 16;

    private final int draftMax, probeInterval;
    private double plainNanos = Double.NaN, draftTokenNanos = Double.NaN;
    /** verifyNanos[r]: EMA of an r-row verification pass, NaN until measured. */
    private final double[] verifyNanos;
    private double agreedWeight = 1, disagreedWeight = 1;   // prior: α = 1/2
    private int stepsOff, stepsOn;
    /** Steps between probes while speculation is off; grows while probes keep losing. */
    private int interval;
    private boolean probing;

    AdaptiveDraftLength(int draftMax, int probeInterval) {
        this.draftMax = draftMax;
        this.probeInterval = probeInterval;
        this.interval = probeInterval;
        this.verifyNanos = new double[draftMax + 2];
        Arrays.fill(verifyNanos, Double.NaN);
    }

    @Override
    public int next(int limit) {
        int kMax = Math.min(draftMax, limit);
        if (kMax <= 0) return 0;
        if (Double.isNaN(plainNanos)) return 0;                                   // measure the baseline first
        if (Double.isNaN(draftTokenNanos) || !anyVerifyMeasured()) return Math.min(kMax, FIRST_PROBE);
        int bestSpeculative = 1;
        double bestSpeculativeRate = rate(1);
        for (int k = 2; k <= kMax; k++) {
            double r = rate(k);
            if (r > bestSpeculativeRate) {
                bestSpeculativeRate = r;
                bestSpeculative = k;
            }
        }
        if (bestSpeculativeRate <= 1.0 / plainNanos) {
            stepsOn = 0;
            if (probing) {          // the last probe did not pay: wait longer before the next
                probing = false;
                interval = Math.min(interval * 2, probeInterval * MAX_BACKOFF);
            }
            if (++stepsOff >= interval) {
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

    /** Expected tokens per nanosecond with a k-token draft. */
    double rate(int k) {
        double alpha = acceptance(), expected = 0, power = 1;
        for (int i = 0; i <= k; i++) {
            expected += power;
            power *= alpha;
        }
        return expected / (k * draftTokenNanos + verifyCost(k + 1));
    }

    double acceptance() { return agreedWeight / (agreedWeight + disagreedWeight); }

    /** Cost of an r-row pass: measured, else interpolated between neighbours, else extrapolated from the top two. */
    double verifyCost(int rows) {
        if (rows == 1) return plainNanos;
        if (!Double.isNaN(verifyNanos[rows])) return verifyNanos[rows];
        int below = rows - 1;
        while (below > 1 && Double.isNaN(verifyNanos[below])) below--;
        int above = rows + 1;
        while (above < verifyNanos.length && Double.isNaN(verifyNanos[above])) above++;
        double yBelow = below == 1 ? plainNanos : verifyNanos[below];
        if (above < verifyNanos.length) {
            return yBelow + (verifyNanos[above] - yBelow) * (rows - below) / (above - below);
        }
        int lower = below - 1;
        while (lower > 1 && Double.isNaN(verifyNanos[lower])) lower--;
        double yLower = lower == 1 ? plainNanos : verifyNanos[lower];
        double slope = below > lower ? Math.max(0, (yBelow - yLower) / (below - lower)) : 0;
        return yBelow + slope * (rows - below);
    }

    private boolean anyVerifyMeasured() {
        for (int r = 2; r < verifyNanos.length; r++) if (!Double.isNaN(verifyNanos[r])) return true;
        return false;
    }

    @Override
    public void plainStep(long nanos) { plainNanos = average(plainNanos, nanos); }

    @Override
    public void drafted(int tokens, long nanos) {
        if (tokens > 0) draftTokenNanos = average(draftTokenNanos, (double) nanos / tokens);
    }

    @Override
    public void verified(int rows, long nanos, int drafted, int agreed) {
        if (rows < verifyNanos.length) verifyNanos[rows] = average(verifyNanos[rows], nanos);
        agreedWeight = agreedWeight * ACCEPTANCE_DECAY + agreed;
        disagreedWeight = disagreedWeight * ACCEPTANCE_DECAY + (agreed < drafted ? 1 : 0);
    }

    private static double average(double old, double sample) {
        return Double.isNaN(old) ? sample : old + TIME_WEIGHT * (sample - old);
    }
}
