package dev.tandem.decode;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Pass costs by row count from fed-in measurements (no clocks involved). */
class PassCostModelTest {
    static final long MS = 1_000_000;

    @Test
    void unknownUntilMeasuredAndNoRowsCostNothing() {
        PassCostModel m = new PassCostModel(64);
        assertFalse(m.isMeasured());
        assertEquals(0, m.largestMeasured());
        assertTrue(Double.isNaN(m.nanos(3)));
        assertEquals(0, m.nanos(0));
        m.record(3, 5 * MS);
        assertTrue(m.isMeasured());
        assertEquals(3, m.largestMeasured());
        assertEquals(0, m.nanos(0));
    }

    @Test
    void aMovingAverageFollowsNewMeasurements() {
        PassCostModel m = new PassCostModel(64);
        m.record(4, 100 * MS);
        assertEquals(100 * MS, m.nanos(4), 1);
        m.record(4, 200 * MS);
        assertEquals(120 * MS, m.nanos(4), 1, "a fifth of the way to the new sample");
        for (int i = 0; i < 100; i++) m.record(4, 200 * MS);
        assertEquals(200 * MS, m.nanos(4), MS);
    }

    @Test
    void interpolatesBetweenMeasuredCountsAndExtrapolatesAlongTheTopSlope() {
        PassCostModel m = new PassCostModel(64);
        m.record(1, 10 * MS);
        m.record(5, 14 * MS);
        assertEquals(12 * MS, m.nanos(3), 1);
        assertEquals(16 * MS, m.nanos(7), 1, "extrapolated along the measured slope");
        m.record(9, 30 * MS);
        assertEquals(22 * MS, m.nanos(7), 1, "now between 5 and 9");
        assertEquals(34 * MS, m.nanos(10), 1, "the slope of the two largest: 4 ms a row");
        assertEquals(30 * MS + 4 * MS * 991, m.nanos(1000), 1, "beyond the capacity too");
    }

    @Test
    void thePriorShapeFillsWhereOnlyOneSideIsMeasured() {
        PassCostModel m = new PassCostModel(64);
        m.record(1, 10 * MS);
        // One count measured: each further row adds half a one-row pass.
        assertEquals(10 * MS * (1 + PassCostModel.PRIOR_ROW_SHARE * 2), m.nanos(3), 1);
        PassCostModel big = new PassCostModel(64);
        big.record(8, 45 * MS);
        // Below the smallest measured, scaled along the prior: 1 + 0.5 · 7 = 4.5 one-row passes at 8 rows.
        assertEquals(10 * MS, big.nanos(1), 1);
        assertEquals(45 * MS * (1 + 0.5 * 11) / 4.5, big.nanos(12), 1);
    }

    @Test
    void extrapolationNeverGoesDownhill() {
        PassCostModel m = new PassCostModel(64);
        m.record(4, 20 * MS);
        m.record(8, 10 * MS);       // noise: a larger pass measured cheaper
        assertEquals(10 * MS, m.nanos(12), 1);
    }

    @Test
    void passesLargerThanItsCapacityAreNotKept() {
        PassCostModel m = new PassCostModel(8);
        m.record(9, 99 * MS);
        m.record(0, 99 * MS);
        assertFalse(m.isMeasured());
        m.record(8, 10 * MS);
        assertEquals(8, m.largestMeasured());
    }
}
