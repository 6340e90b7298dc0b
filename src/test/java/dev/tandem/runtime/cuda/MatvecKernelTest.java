package dev.tandem.runtime.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.tandem.model.TensorType;

import java.lang.foreign.MemorySegment;
import java.util.Random;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class MatvecKernelTest extends KernelTestSupport {
    // K = 9 super-blocks: 72 quant units, so lanes 0..7 get three units and the others two; N = 37 leaves the
    // last block of four output rows partly empty.
    static final int K = 2304;
    static final int N = 37;

    /** Each y[r][o] is within 1e-5 x sum|w x| of the double-precision dot of the decoded row and x. */
    @ParameterizedTest
    @EnumSource(value = TensorType.class, names = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q5_K", "Q6_K"})
    void matchesScalarReferenceForSeventeenRows(TensorType type) {
        Random random = new Random(42 + type.ordinal());
        byte[] w = ReferenceWeights.random(type, N, K, random);
        float[] x = randomFloats(random, LaunchGeometry.MAX_ROWS * K, 1f);
        float[] y = run(type, w, x, LaunchGeometry.MAX_ROWS);

        double[] expected = new double[y.length], magnitude = new double[y.length];
        for (int o = 0; o < N; o++) {
            double[] row = ReferenceWeights.decode(type, w, o, K);
            for (int r = 0; r < LaunchGeometry.MAX_ROWS; r++) {
                double s = 0, m = 0;
                for (int i = 0; i < K; i++) {
                    s += row[i] * x[r * K + i];
                    m += Math.abs(row[i] * x[r * K + i]);
                }
                expected[r * N + o] = s;
                magnitude[r * N + o] = m;
            }
        }
        assertClose("matvec " + type, expected, y, magnitude, 1e-5);
    }

    /**
     * The bitwise contract: row r's outputs have the same bits whatever the launch's row count, across every
     * instantiation (exact 1..8, up to 12, up to 17).
     */
    @ParameterizedTest
    @EnumSource(value = TensorType.class, names = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q5_K", "Q6_K"})
    void rowsHaveIdenticalBitsWhateverTheRowCount(TensorType type) {
        Random random = new Random(7 + type.ordinal());
        byte[] w = ReferenceWeights.random(type, N, K, random);
        float[] x = randomFloats(random, LaunchGeometry.MAX_ROWS * K, 1f);
        float[] all = run(type, w, x, LaunchGeometry.MAX_ROWS);
        for (int rows = 1; rows < LaunchGeometry.MAX_ROWS; rows++) {
            float[] some = run(type, w, x, rows);
            for (int i = 0; i < rows * N; i++) {
                assertEquals(Float.floatToRawIntBits(all[i]), Float.floatToRawIntBits(some[i]),
                        type + ": row " + i / N + ", output " + i % N + " differs between R=" + rows + " and R=17");
            }
        }
    }

    /**
     * Rows long enough for several whole stages of the flat formats' cp.async pipeline and a partial last one
     * (K = 12800: Q8_0 3 whole steps of 256 spans and 32 spans more, BF16 6 and 64, F32 12 and 128): close to the
     * double-precision dot products, and the same bits for 1, 3 and 17 rows.
     */
    @ParameterizedTest
    @EnumSource(value = TensorType.class, names = {"F32", "F16", "BF16", "Q8_0", "Q4_K"})
    void longRowsStreamThroughEveryStage(TensorType type) {
        int k = 12800, n = 9;
        Random random = new Random(17 + type.ordinal());
        byte[] w = ReferenceWeights.random(type, n, k, random);
        MemorySegment wSeg = weights(type, w, n, k), none = MemorySegment.NULL;
        float[] x = randomFloats(random, LaunchGeometry.MAX_ROWS * k, 1f);
        float[][] out = new float[3][];
        int[] rowCounts = {1, 3, LaunchGeometry.MAX_ROWS};
        for (int c = 0; c < 3; c++) {
            int rows = rowCounts[c];
            MemorySegment ySeg = floats(rows * n);
            kernels.launch(Kernel.matvec(type, rows), LaunchGeometry.matvec(type, k, n, rows), wSeg, none, none,
                    floats(java.util.Arrays.copyOf(x, rows * k)), none, none, none, ySeg, none, none, k, n, 0, 0, rows, none, none, none, 0f, none);
            out[c] = read(ySeg, rows * n);
        }
        double[] expected = new double[out[2].length], magnitude = new double[out[2].length];
        for (int o = 0; o < n; o++) {
            double[] row = ReferenceWeights.decode(type, w, o, k);
            for (int r = 0; r < LaunchGeometry.MAX_ROWS; r++) {
                for (int i = 0; i < k; i++) {
                    expected[r * n + o] += row[i] * x[r * k + i];
                    magnitude[r * n + o] += Math.abs(row[i] * x[r * k + i]);
                }
            }
        }
        assertClose("matvec " + type + " K=" + k, expected, out[2], magnitude, 1e-5);
        for (int c = 0; c < 2; c++) {
            for (int i = 0; i < out[c].length; i++) {
                assertEquals(Float.floatToRawIntBits(out[2][i]), Float.floatToRawIntBits(out[c][i]),
                        type + ": output " + i + " differs between R=" + rowCounts[c] + " and R=17");
            }
        }
    }

    /**
     * A layer's Q, K and V in one launch: each matrix's outputs (plus its bias, when it has one) have the bits of
     * its own launch followed by the bias pass.
     */
    @ParameterizedTest
    @EnumSource(value = TensorType.class, names = {"BF16", "Q8_0", "Q4_K", "Q6_K"})
    void groupedMatricesMatchSeparateLaunchesAndBiasPasses(TensorType type) {
        Random random = new Random(11 + type.ordinal());
        int[] n = {N, 8, 5};
        byte[][] w = new byte[3][];
        MemorySegment[] wSeg = new MemorySegment[3], bias = new MemorySegment[3], y = new MemorySegment[3];
        float[][] biasValues = new float[3][];
        for (int j = 0; j < 3; j++) {
            w[j] = ReferenceWeights.random(type, n[j], K, random);
            wSeg[j] = weights(type, w[j], n[j], K);
            biasValues[j] = randomFloats(random, n[j], 0.5f);
        }
        for (int rows : new int[] {1, 5, 17}) {
            float[] x = randomFloats(random, rows * K, 1f);
            MemorySegment xSeg = floats(x);
            for (int j = 0; j < 3; j++) {
                bias[j] = j == 1 ? MemorySegment.NULL : floats(biasValues[j]);
                y[j] = floats(rows * n[j]);
            }
            kernels.launch(Kernel.matvec(type, rows), LaunchGeometry.matvec(type, K, n[0] + n[1] + n[2], rows),
                    wSeg[0], wSeg[1], wSeg[2], xSeg, bias[0], bias[1], bias[2], y[0], y[1], y[2], K, n[0], n[1], n[2], rows,
                    MemorySegment.NULL, MemorySegment.NULL, MemorySegment.NULL, 0f, MemorySegment.NULL);
            for (int j = 0; j < 3; j++) {
                float[] alone = run(type, w[j], n[j], x, rows);
                float[] grouped = read(y[j], rows * n[j]);
                for (int i = 0; i < alone.length; i++) {
                    float expected = j == 1 ? alone[i] : alone[i] + biasValues[j][i % n[j]];
                    assertEquals(Float.floatToRawIntBits(expected), Float.floatToRawIntBits(grouped[i]),
                            type + " R=" + rows + ": matrix " + j + ", row " + i / n[j] + ", output " + i % n[j]);
                }
            }
        }
    }

    /**
     * The residual epilogue: a projection launch that also adds its output into the residual stream and normalises
     * it leaves the projection's bits, the residual's sum and a norm close to rmsnorm_residual's (its block is 128
     * threads, not 256: another fixed order), with the same bits for every row count; its counter is 0 again after.
     */
    @ParameterizedTest
    @EnumSource(value = TensorType.class, names = {"BF16", "Q8_0", "Q6_K"})
    void residualEpilogueAddsAndNormalisesAfterTheLastBlock(TensorType type) {
        int n = 300, k = 512;
        float eps = 1e-5f;
        Random random = new Random(19 + type.ordinal());
        byte[] w = ReferenceWeights.random(type, n, k, random);
        MemorySegment wSeg = weights(type, w, n, k), none = MemorySegment.NULL, done = ints(new int[] {0});
        float[] residual = randomFloats(random, LaunchGeometry.MAX_ROWS * n, 1f), normWeight = randomFloats(random, n, 1f);
        float[] x = randomFloats(random, LaunchGeometry.MAX_ROWS * k, 1f);
        float[] allNorm = null;
        for (int rows : new int[] {LaunchGeometry.MAX_ROWS, 1, 5}) {
            MemorySegment xSeg = floats(java.util.Arrays.copyOf(x, rows * k)), y = floats(rows * n), plainY = floats(rows * n);
            MemorySegment res = floats(java.util.Arrays.copyOf(residual, rows * n)), out = floats(rows * n);
            kernels.launch(Kernel.matvec(type, rows), LaunchGeometry.matvec(type, k, n, rows), wSeg, none, none, xSeg, none, none, none,
                    y, none, none, k, n, 0, 0, rows, res, floats(normWeight), out, eps, done);
            kernels.launch(Kernel.matvec(type, rows), LaunchGeometry.matvec(type, k, n, rows), wSeg, none, none, xSeg, none, none, none,
                    plainY, none, none, k, n, 0, 0, rows, none, none, none, 0f, none);
            assertEquals(-1, y.mismatch(plainY), "the projection itself changed");
            assertEquals(0, readInts(done, 1)[0], "the counter is reset for the next launch");
            float[] proj = read(y, rows * n), sum = read(res, rows * n), norm = read(out, rows * n);
            double[] expected = new double[rows * n], magnitude = new double[rows * n];
            for (int r = 0; r < rows; r++) {
                double ss = 0;
                for (int i = 0; i < n; i++) {
                    float s = residual[r * n + i] + proj[r * n + i];
                    assertEquals(Float.floatToRawIntBits(s), Float.floatToRawIntBits(sum[r * n + i]), "residual row " + r + " at " + i);
                    ss += (double) s * s;
                }
                double scale = 1 / Math.sqrt(ss / n + eps);
                for (int i = 0; i < n; i++) {
                    expected[r * n + i] = sum[r * n + i] * scale * normWeight[i];
                    magnitude[r * n + i] = Math.abs(expected[r * n + i]) + 1e-3;
                }
            }
            assertClose(type + " epilogue norm, R=" + rows, expected, norm, magnitude, 1e-5);
            if (allNorm == null) allNorm = norm;
            for (int i = 0; i < rows * n; i++) {
                assertEquals(Float.floatToRawIntBits(allNorm[i]), Float.floatToRawIntBits(norm[i]), type + ": norm " + i + " differs between R=" + rows + " and R=17");
            }
        }
    }

    /** Gate, up and SwiGLU in one launch: the bits of two launches and the swiglu kernel, for every row count. */
    @ParameterizedTest
    @EnumSource(value = TensorType.class, names = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q5_K", "Q6_K"})
    void gatedMatvecMatchesTwoProductsAndTheSwigluKernel(TensorType type) {
        Random random = new Random(13 + type.ordinal());
        byte[] gate = ReferenceWeights.random(type, N, K, random), up = ReferenceWeights.random(type, N, K, random);
        MemorySegment gateSeg = weights(type, gate, N, K), upSeg = weights(type, up, N, K);
        for (int rows = 1; rows <= LaunchGeometry.MATVEC_GATED_MAX_ROWS; rows++) {
            float[] x = randomFloats(random, rows * K, 1f);
            MemorySegment xSeg = floats(x), fused = floats(rows * N), separate = floats(rows * N);
            kernels.launch(Kernel.matvecSwiglu(type, rows), LaunchGeometry.matvecGated(type, K, N, rows), gateSeg, upSeg, xSeg, fused, K, N, rows);
            MemorySegment g = floats(run(type, gate, N, x, rows)), u = floats(run(type, up, N, x, rows));
            kernels.launch(Kernel.SWIGLU, LaunchGeometry.elementwise(rows * N), g, u, separate, rows * N);
            float[] a = read(separate, rows * N), b = read(fused, rows * N);
            for (int i = 0; i < a.length; i++) {
                assertEquals(Float.floatToRawIntBits(a[i]), Float.floatToRawIntBits(b[i]), type + " R=" + rows + ": output " + i);
            }
        }
    }

    @Test
    void rejectsShapesTheKernelCannotTake() {
        assertThrows(IllegalArgumentException.class, () -> LaunchGeometry.matvec(TensorType.Q4_K, 512 + 32, N, 1));
        assertThrows(IllegalArgumentException.class, () -> LaunchGeometry.matvec(TensorType.F16, 100, N, 1));
        assertThrows(IllegalArgumentException.class, () -> LaunchGeometry.matvec(TensorType.Q8_0, K, N, 18));
        assertThrows(IllegalArgumentException.class, () -> LaunchGeometry.matvec(TensorType.Q8_0, K, N, 0));
        assertThrows(IllegalArgumentException.class, () -> Kernel.matvec(TensorType.Q8_0, 18));
    }

    @Test
    void eachRowCountRunsTheSmallestInstantiationThatHoldsIt() {
        assertEquals("matvec_q8_0_r1", Kernel.matvec(TensorType.Q8_0, 1).cudaName());
        assertEquals("matvec_q8_0_r8", Kernel.matvec(TensorType.Q8_0, 8).cudaName());
        assertEquals("matvec_q8_0_r12", Kernel.matvec(TensorType.Q8_0, 9).cudaName());
        assertEquals("matvec_swiglu_bf16_r8", Kernel.matvecSwiglu(TensorType.BF16, 8).cudaName());
        assertThrows(IllegalArgumentException.class, () -> Kernel.matvecSwiglu(TensorType.BF16, 9));
    }

    private float[] run(TensorType type, byte[] w, float[] x, int rows) { return run(type, w, N, x, rows); }

    /** x[0..rows) times the n weight rows w, one matrix alone in its launch. */
    private float[] run(TensorType type, byte[] w, int n, float[] x, int rows) {
        MemorySegment wSeg = weights(type, w, n, K), xSeg = floats(x), ySeg = floats(rows * n), none = MemorySegment.NULL;
        kernels.launch(Kernel.matvec(type, rows), LaunchGeometry.matvec(type, K, n, rows), wSeg, none, none, xSeg, none, none, none,
                ySeg, none, none, K, n, 0, 0, rows, none, none, none, 0f, none);
        return read(ySeg, rows * n);
    }
}
