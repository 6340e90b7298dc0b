package dev.tandem.runtime.cpu;

import dev.tandem.model.quant.HalfFloat;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.util.function.IntConsumer;

/**
 * Scratch for the activation rows of one pass: R rows of {@code columns} floats, plus their 8-bit
 * quantisations, each made at most once per {@link #load} and only when a weight type asks for it.
 * Preallocated for maxRows x maxColumns and reused across passes: nothing is allocated in the decode loop
 * (the quantisation arrays are allocated the first time each is needed).
 *
 * <p>Quantised values are kept as int-valued floats: products of two 8-bit values and their short sums are
 * exact in float, so the kernels do llama.cpp's integer block arithmetic with float lanes.
 */
public final class Activations {
    static final int Q8_0_BLOCK = 32;
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED.length() <= Q8_0_BLOCK ? FloatVector.SPECIES_PREFERRED : FloatVector.SPECIES_256;
    /** 1.5 * 2^23: x + ROUNDING - ROUNDING is x rounded to an integer (ties to even) for |x| < 2^22. */
    private static final float ROUNDING = 12582912.0f;
    static final int Q8_K_BLOCK = 256;

    private final int maxRows;
    private final int maxColumns;
    private float[] x;
    private int rows;
    private int columns;

    private float[] q80Values;      // row r at r*columns, values in [-127, 127]
    private float[] q80Scales;      // one f16-rounded d per 32 elements
    private float[] q80Scaled;      // q * d rounded to float: the x' of the Q8_0-weight contract (MatmulQ80Direct)
    private boolean q80Ready;
    private final IntConsumer quantizeQ80Row = this::quantizeQ80Row;

    private float[] q8kValues;      // row r at r*columns, values in [-128, 127]
    private float[] q8kScales;      // one float d per 256 elements
    private int[] q8kSums;          // sum of the values of each 32 elements (two ggml bsums)
    private boolean q8kReady;
    private final IntConsumer quantizeQ8KRow = this::quantizeQ8KRow;

    public Activations(int maxRows, int maxColumns) {
        if (maxRows < 1 || maxColumns < 1) throw new IllegalArgumentException("activations need at least 1 x 1, got " + maxRows + " x " + maxColumns);
        this.maxRows = maxRows;
        this.maxColumns = maxColumns;
    }

    /**
     * Points at rows x columns floats in x (row-major, row r at x[r*columns]); invalidates earlier
     * quantisations. x is not copied; the caller must not modify it until the multiplies using it are done.
     */
    public void load(float[] x, int rows, int columns) {
        if (rows < 1 || rows > maxRows || columns < 1 || columns > maxColumns) {
            throw new IllegalArgumentException("activations of " + rows + " x " + columns + " do not fit the scratch of " + maxRows + " x " + maxColumns);
        }
        if (x.length < (long) rows * columns) {
            throw new IllegalArgumentException("activation array of " + x.length + " floats is shorter than " + rows + " x " + columns);
        }
        this.x = x;
        this.rows = rows;
        this.columns = columns;
        q80Ready = false;
        q8kReady = false;
    }

    public int rows() { return rows; }

    public int columns() { return columns; }

    float[] values() { return x; }

    /** Quantises every row to Q8_0 blocks unless already done for this load. */
    void prepareQ80(WorkerPool pool) {
        if (q80Ready) return;
        if (q80Values == null) {
            q80Values = new float[maxRows * maxColumns];
            q80Scales = new float[maxRows * (maxColumns / Q8_0_BLOCK)];
            q80Scaled = new float[maxRows * maxColumns];
        }
        pool.forEach(rows, quantizeQ80Row);
        q80Ready = true;
    }

    float[] q80Values() { return q80Values; }

    float[] q80Scales() { return q80Scales; }

    float[] q80Scaled() { return q80Scaled; }

    /** Quantises every row to Q8_K blocks unless already done for this load. */
    void prepareQ8K(WorkerPool pool) {
        if (q8kReady) return;
        if (q8kValues == null) {
            q8kValues = new float[maxRows * maxColumns];
            q8kScales = new float[maxRows * (maxColumns / Q8_K_BLOCK)];
            q8kSums = new int[maxRows * (maxColumns / Q8_0_BLOCK)];
        }
        pool.forEach(rows, quantizeQ8KRow);
        q8kReady = true;
    }

    float[] q8kValues() { return q8kValues; }

    float[] q8kScales() { return q8kScales; }

    int[] q8kSums() { return q8kSums; }

    /**
     * As llama.cpp's x86 quantize_row_q8_0: d = amax/127 stored as f16, q = round-half-even(x * 127/amax).
     * Depends only on row r, so a row quantises the same in any batch. Vectorised with the same results: the
     * largest magnitude does not depend on the order of comparison, and adding then subtracting 1.5 * 2^23
     * rounds a float of magnitude below 2^22 to the nearest integer, ties to even, exactly as Math.rint.
     */
    private void quantizeQ80Row(int r) {
        int blocks = columns / Q8_0_BLOCK;
        for (int b = 0; b < blocks; b++) {
            int at = r * columns + b * Q8_0_BLOCK;
            FloatVector max = FloatVector.zero(F);
            for (int i = 0; i < Q8_0_BLOCK; i += F.length()) max = max.max(FloatVector.fromArray(F, x, at + i).abs());
            float amax = max.reduceLanes(VectorOperators.MAX);
            float id = amax != 0 ? 127.0f / amax : 0.0f;
            float d = HalfFloat.toFloat(HalfFloat.fromFloat(amax / 127.0f));
            q80Scales[r * (columns / Q8_0_BLOCK) + b] = d;
            for (int i = 0; i < Q8_0_BLOCK; i += F.length()) {
                FloatVector q = FloatVector.fromArray(F, x, at + i).mul(id).add(ROUNDING).sub(ROUNDING);
                q.intoArray(q80Values, at + i);
                q.mul(d).intoArray(q80Scaled, at + i);
            }
        }
    }

    /**
     * As ggml's quantize_row_q8_K_ref: the element of largest magnitude maps to -127, d = 1/iscale kept in
     * float, q = min(127, nearest(x * iscale)), plus the sums per 32 elements for the K-quant mins.
     */
    private void quantizeQ8KRow(int r) {
        int blocks = columns / Q8_K_BLOCK;
        for (int b = 0; b < blocks; b++) {
            int at = r * columns + b * Q8_K_BLOCK;
            float amax = 0, max = 0;
            for (int i = 0; i < Q8_K_BLOCK; i++) {
                float ax = Math.abs(x[at + i]);
                if (ax > amax) {
                    amax = ax;
                    max = x[at + i];
                }
            }
            int sums = r * (columns / Q8_0_BLOCK) + b * (Q8_K_BLOCK / Q8_0_BLOCK);
            if (amax == 0) {
                q8kScales[r * (columns / Q8_K_BLOCK) + b] = 0;
                for (int i = 0; i < Q8_K_BLOCK; i++) q8kValues[at + i] = 0;
                for (int j = 0; j < Q8_K_BLOCK / Q8_0_BLOCK; j++) q8kSums[sums + j] = 0;
                continue;
            }
            float iscale = -127.0f / max;
            for (int j = 0; j < Q8_K_BLOCK / Q8_0_BLOCK; j++) {
                int sum = 0;
                for (int i = 0; i < Q8_0_BLOCK; i++) {
                    int q = Math.min(127, (int) Math.rint(iscale * x[at + j * Q8_0_BLOCK + i]));
                    q8kValues[at + j * Q8_0_BLOCK + i] = q;
                    sum += q;
                }
                q8kSums[sums + j] = sum;
            }
            q8kScales[r * (columns / Q8_K_BLOCK) + b] = 1 / iscale;
        }
    }
}
