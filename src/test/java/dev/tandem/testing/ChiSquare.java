package dev.tandem.testing;

/**
 * Pearson's chi-square goodness of fit for the sampling tests: the statistic of observed counts against
 * probabilities, and the critical value it must not exceed at a stated false-failure rate.
 */
public final class ChiSquare {
    private ChiSquare() {}

    /** A statistic and its degrees of freedom (the cells counted, less one). */
    public record Fit(double statistic, int degreesOfFreedom) {
        /** The critical value for these degrees of freedom at false-failure rate {@code alpha}. */
        public double critical(double alpha) {
            return ChiSquare.critical(degreesOfFreedom, alpha);
        }
    }

    /**
     * Pearson's statistic of {@code observed} counts (out of {@code total}) against probabilities {@code expected};
     * the cells of expected count below 5, where the chi-square approximation does not hold, are pooled into one.
     */
    public static Fit statistic(long[] observed, double[] expected, long total) {
        if (observed.length != expected.length) {
            throw new IllegalArgumentException(observed.length + " observed cells against " + expected.length + " expected");
        }
        double chi = 0, pooledObserved = 0, pooledExpected = 0;
        int cells = 0;
        for (int i = 0; i < observed.length; i++) {
            double e = expected[i] * total;
            if (e < 5) {
                pooledObserved += observed[i];
                pooledExpected += e;
                continue;
            }
            chi += (observed[i] - e) * (observed[i] - e) / e;
            cells++;
        }
        if (pooledExpected > 0) {
            chi += (pooledObserved - pooledExpected) * (pooledObserved - pooledExpected) / Math.max(pooledExpected, 1e-9);
            cells++;
        }
        return new Fit(chi, cells - 1);
    }

    /**
     * The upper {@code alpha} quantile of chi-square with {@code df} degrees of freedom, by the Wilson–Hilferty
     * approximation: (X/df)^(1/3) is nearly normal with mean 1 - 2/(9 df) and variance 2/(9 df). Within 1% of the
     * tables from df 2 at alpha 0.05 and 0.01; at alpha 1e-5 it errs on the safe side, above the exact quantile, so
     * that the real false-failure rate lies between 0.6 alpha (df 5) and alpha (ChiSquareTest).
     */
    public static double critical(int df, double alpha) {
        if (df < 1) throw new IllegalArgumentException("degrees of freedom " + df + ": need at least 1 (two cells)");
        double z = normalUpperQuantile(alpha), a = 2.0 / (9.0 * df);
        return df * Math.pow(1 - a + z * Math.sqrt(a), 3);
    }

    /** z with P(Z > z) = {@code alpha} for a standard normal Z, by bisection (the tail falls strictly). */
    public static double normalUpperQuantile(double alpha) {
        if (!(alpha > 0 && alpha < 1)) throw new IllegalArgumentException("tail probability " + alpha + " is not in (0, 1)");
        double lo = -40, hi = 40;
        for (int i = 0; i < 200 && lo < hi; i++) {
            double mid = (lo + hi) / 2;
            if (mid == lo || mid == hi) break;
            if (normalUpperTail(mid) > alpha) lo = mid; else hi = mid;
        }
        return (lo + hi) / 2;
    }

    /**
     * P(Z > z) for a standard normal Z, to near double precision (relative, so also far in the tail where
     * 1e-5 thresholds live): the Taylor series of the integral of the density up to 3, Laplace's continued
     * fraction for the tail beyond (it converges quickly there and avoids the cancellation of 1/2 minus the series).
     */
    public static double normalUpperTail(double z) {
        if (z < 0) return 1 - normalUpperTail(-z);
        double density = Math.exp(-z * z / 2) / Math.sqrt(2 * Math.PI);
        if (z <= 3) {
            // integral from 0 to z of the density = density(z) * sum z^(2n+1) / (1 * 3 * ... * (2n+1))
            double term = z, sum = z;
            for (int n = 1; term > 1e-17 * sum; n++) {
                term *= z * z / (2 * n + 1);
                sum += term;
            }
            return 0.5 - density * sum;
        }
        // P(Z > z) = density / (z + 1/(z + 2/(z + 3/(z + ...)))), evaluated from the inside out.
        double fraction = z;
        for (int k = 200; k >= 1; k--) fraction = z + k / fraction;
        return density / fraction;
    }
}
