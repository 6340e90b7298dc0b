package dev.tandem.decode;

/** Pearson's chi-square goodness of fit, with cells of expected count below 5 pooled. */
final class ChiSquare {
    private ChiSquare() {}

    /** {statistic, degrees of freedom} of {@code observed} counts against probabilities {@code expected}. */
    static double[] statistic(long[] observed, double[] expected, long total) {
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
        return new double[] {chi, cells - 1};
    }

    /** Upper quantile of chi-square with {@code df} degrees of freedom at tail probability {@code alpha} (Wilson–Hilferty). */
    static double critical(int df, double alpha) {
        double z = normalUpperQuantile(alpha), a = 2.0 / (9.0 * df);
        return df * Math.pow(1 - a + z * Math.sqrt(a), 3);
    }

    /** z with P(Z > z) = alpha, by bisection on the complementary error function. */
    static double normalUpperQuantile(double alpha) {
        double lo = 0, hi = 10;
        for (int i = 0; i < 100; i++) {
            double mid = (lo + hi) / 2;
            if (upperTail(mid) > alpha) lo = mid; else hi = mid;
        }
        return (lo + hi) / 2;
    }

    /** P(Z > z) for z >= 0 (Abramowitz–Stegun 7.1.26, error below 1.5e-7 — ample for a threshold). */
    static double upperTail(double z) {
        double x = z / Math.sqrt(2), t = 1 / (1 + 0.3275911 * x);
        double erfc = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))) * Math.exp(-x * x);
        return erfc / 2;
    }
}
