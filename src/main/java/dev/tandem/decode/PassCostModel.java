package dev.tandem.decode;

import java.util.Arrays;
import java.util.BitSet;

/**
 * What a forward pass of one model costs by its row count: an exponential moving average of the measured
 * nanoseconds for each row count, linear interpolation between measured counts, and beyond them a prior shape. One
 * per loaded model, shared by every sequence that runs on it, so that a sequence weighs a pass by the rows the whole
 * batch puts in it. Confined to the thread that runs the model's passes: not thread-safe.
 *
 * <p>The absolute cost of a pass cannot be guessed (a GPU and a 2-core CPU differ a hundredfold), so before any
 * measurement {@link #nanos} is NaN and {@link #isMeasured()} false; the prior is only a shape, used away from the
 * measured counts: an extra row adds {@link #PRIOR_ROW_SHARE} of a one-row pass. That is about what a small CPU
 * measures (bench/parallel-3b-q8_0.md: a 5-row pass costs 2.6 one-row passes, a share of 0.4); a GPU's share is
 * far smaller, so the prior errs towards drafting less until larger passes have been measured.
 *
 * <p>{@link #record} is O(1) and allocates nothing; {@link #nanos} scans a bit set for the measured neighbours.
 */
public final class PassCostModel {
    /** How much of a one-row pass each further row adds, before a slope has been measured. */
    static final double PRIOR_ROW_SHARE = 0.5;
    /** Weight of a new sample in the moving average: follows drifting costs within a few passes. */
    private static final double WEIGHT = 0.2;

    /** nanos[r]: the average cost of an r-row pass, meaningful where {@link #measured} has bit r. */
    private final double[] nanos;
    private final BitSet measured;

    /** Keeps row counts 1..{@code maxRows}; larger passes are not recorded, and their cost is extrapolated. */
    public PassCostModel(int maxRows) {
        if (maxRows < 1) throw new IllegalArgumentException("maxRows must be at least 1, got " + maxRows);
        this.nanos = new double[maxRows + 1];
        this.measured = new BitSet(maxRows + 1);
        Arrays.fill(nanos, Double.NaN);
    }

    /** A pass of {@code rows} rows took {@code passNanos}. */
    public void record(int rows, long passNanos) {
        if (rows < 1 || rows >= nanos.length || passNanos < 0) return;
        nanos[rows] = measured.get(rows) ? nanos[rows] + WEIGHT * (passNanos - nanos[rows]) : passNanos;
        measured.set(rows);
    }

    /** Whether any pass has been measured; until then {@link #nanos} is NaN. */
    public boolean isMeasured() { return !measured.isEmpty(); }

    /** The largest row count measured, 0 when none. */
    public int largestMeasured() { return Math.max(0, measured.length() - 1); }

    /**
     * The expected nanoseconds of a {@code rows}-row pass: 0 for no rows; measured; else interpolated between the
     * measured counts either side; below the smallest, scaled from it along the prior shape; above the largest,
     * extrapolated along the slope of the two largest (never downwards), or along the prior with one measured.
     */
    public double nanos(int rows) {
        if (rows <= 0) return 0;
        if (measured.isEmpty()) return Double.NaN;
        int top = measured.length() - 1;
        if (rows <= top) {
            if (measured.get(rows)) return nanos[rows];
            int below = measured.previousSetBit(rows);
            int above = measured.nextSetBit(rows);
            if (below < 1) return nanos[above] * prior(rows) / prior(above);
            return nanos[below] + (nanos[above] - nanos[below]) * (rows - below) / (above - below);
        }
        int lower = measured.previousSetBit(top - 1);
        double slope = lower >= 1
                ? Math.max(0, (nanos[top] - nanos[lower]) / (top - lower))
                : nanos[top] * PRIOR_ROW_SHARE / prior(top);
        return nanos[top] + slope * (rows - top);
    }

    /** The prior shape: an r-row pass in units of a one-row pass. */
    private static double prior(int rows) { return 1 + PRIOR_ROW_SHARE * (rows - 1); }
}
