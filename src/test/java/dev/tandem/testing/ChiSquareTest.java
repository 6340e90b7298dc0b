package dev.tandem.testing;

import dev.tandem.testing.ChiSquare.Fit;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The chi-square helper of the sampling tests: the statistic by hand, the normal tail against its own integral,
 * and the Wilson–Hilferty critical value against the printed tables and against the exact chi-square tail.
 */
class ChiSquareTest {
    @Test
    void statisticIsPearsonsSumOverTheCells() {
        // Expected 25 each: (15² + 5² + 5² + 15²) / 25 = 20, four cells.
        Fit fit = ChiSquare.statistic(new long[] {10, 20, 30, 40}, new double[] {0.25, 0.25, 0.25, 0.25}, 100);
        assertEquals(20, fit.statistic(), 1e-12);
        assertEquals(3, fit.degreesOfFreedom());
    }

    @Test
    void cellsExpectedBelowFiveArePooled() {
        // Expected 50, 48, 1, 1: the last two pool into one cell expected 2, observed 5.
        // 5²/50 + 2²/48 + 3²/2 = 0.5 + 1/12 + 4.5, three cells.
        Fit fit = ChiSquare.statistic(new long[] {45, 50, 3, 2}, new double[] {0.5, 0.48, 0.01, 0.01}, 100);
        assertEquals(0.5 + 1.0 / 12 + 4.5, fit.statistic(), 1e-12);
        assertEquals(2, fit.degreesOfFreedom());
    }

    @Test
    void normalTailIsTheIntegralOfTheDensity() {
        for (double z : new double[] {0, 0.5, 1.96, 2.9, 3, 3.1, 4.264891, 6}) {
            double integral = simpson(z, z + 15, 30_000);
            double tail = ChiSquare.normalUpperTail(z);
            assertEquals(integral, tail, 1e-9 * integral, "P(Z > " + z + ")");
            assertEquals(1 - tail, ChiSquare.normalUpperTail(-z), 1e-15, "symmetry at " + z);
        }
    }

    @Test
    void normalQuantilesAreTheTableValues() {
        assertEquals(1.644854, ChiSquare.normalUpperQuantile(0.05), 1e-6);
        assertEquals(1.959964, ChiSquare.normalUpperQuantile(0.025), 1e-6);
        assertEquals(2.326348, ChiSquare.normalUpperQuantile(0.01), 1e-6);
        assertEquals(4.264891, ChiSquare.normalUpperQuantile(1e-5), 1e-6);
        assertEquals(0, ChiSquare.normalUpperQuantile(0.5), 1e-12);
    }

    /** The exact tail below reproduces the printed tables, so it can judge the approximation. */
    @Test
    void exactTailGivesTheTableValues() {
        double[][] table = {{1, 0.05, 3.841}, {2, 0.05, 5.991}, {10, 0.05, 18.307}, {10, 0.01, 23.209},
                {30, 0.05, 43.773}, {30, 0.01, 50.892}, {100, 0.05, 124.342}, {100, 0.01, 135.807}};
        for (double[] row : table) {
            assertEquals(row[2], exactCritical((int) row[0], row[1]), 5e-4, "df " + (int) row[0] + " at " + row[1]);
        }
    }

    @Test
    void criticalValueIsWithinOnePercentOfTheTablesFromTwoDegreesOfFreedom() {
        double[][] table = {{2, 0.05, 5.991}, {2, 0.01, 9.210}, {10, 0.05, 18.307}, {10, 0.01, 23.209},
                {30, 0.05, 43.773}, {30, 0.01, 50.892}, {100, 0.05, 124.342}, {100, 0.01, 135.807}};
        for (double[] row : table) {
            assertEquals(row[2], ChiSquare.critical((int) row[0], row[1]), 0.01 * row[2], "df " + (int) row[0] + " at " + row[1]);
        }
    }

    /** The sampling tests' rate: their statistics have 5 to 100 degrees of freedom. */
    @Test
    void atOneInAHundredThousandTheRealFalseFailureRateIsNoMoreThanStated() {
        for (int df : new int[] {5, 10, 20, 30, 50, 80, 100}) {
            double rate = exactSurvival(df, ChiSquare.critical(df, 1e-5));
            assertTrue(rate <= 1e-5 && rate >= 0.6e-5, "df " + df + ": real rate " + rate);
        }
    }

    @Test
    void badInputIsNamed() {
        assertThrows(IllegalArgumentException.class, () -> ChiSquare.statistic(new long[3], new double[4], 10));
        assertThrows(IllegalArgumentException.class, () -> ChiSquare.critical(0, 0.05));
        assertThrows(IllegalArgumentException.class, () -> ChiSquare.normalUpperQuantile(0));
    }

    /**
     * P(X > x) for chi-square with df degrees of freedom, exactly, by integrating the density by parts:
     * even df = 2m gives e^(-x/2) sum_{k<m} (x/2)^k / k!; odd df = 2m+1 gives
     * 2 P(Z > sqrt x) + 2 phi(sqrt x) sum_{k=1..m} x^(k-1/2) / (1 * 3 * ... * (2k-1)).
     */
    static double exactSurvival(int df, double x) {
        if (df % 2 == 0) {
            double term = 1, sum = 0;
            for (int k = 0; k < df / 2; k++) {
                sum += term;
                term *= x / 2 / (k + 1);
            }
            return Math.exp(-x / 2) * sum;
        }
        double r = Math.sqrt(x), term = r, sum = 0;
        for (int k = 1; k <= df / 2; k++) {
            sum += term;
            term *= x / (2 * k + 1);
        }
        return 2 * ChiSquare.normalUpperTail(r) + 2 * density(r) * sum;
    }

    static double exactCritical(int df, double alpha) {
        double lo = 0, hi = 10 * df + 100;
        for (int i = 0; i < 200; i++) {
            double mid = (lo + hi) / 2;
            if (exactSurvival(df, mid) > alpha) lo = mid; else hi = mid;
        }
        return (lo + hi) / 2;
    }

    static double density(double z) {
        return Math.exp(-z * z / 2) / Math.sqrt(2 * Math.PI);
    }

    /** Simpson's rule for the standard normal density over [a, b] in n (even) steps. */
    static double simpson(double a, double b, int n) {
        double h = (b - a) / n, sum = density(a) + density(b);
        for (int i = 1; i < n; i++) sum += (i % 2 == 1 ? 4 : 2) * density(a + i * h);
        return sum * h / 3;
    }
}
