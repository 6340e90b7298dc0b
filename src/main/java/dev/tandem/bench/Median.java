package dev.tandem.bench;

import java.util.Arrays;

/** The benches' one summary of repeated measurements, which drift with the machine's load: their median. */
final class Median {
    private Median() {}

    /** The middle value, or the mean of the two middle ones. */
    static double of(double[] values) {
        if (values.length == 0) throw new IllegalArgumentException("the median of no values");
        double[] v = values.clone();
        Arrays.sort(v);
        return v.length % 2 == 1 ? v[v.length / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
    }

    static double of(long[] values) {
        return of(Arrays.stream(values).asDoubleStream().toArray());
    }
}
