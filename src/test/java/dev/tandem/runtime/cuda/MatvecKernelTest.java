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

    /** The bitwise contract: row r's outputs have the same bits whether the launch has 1, 2, 5 or 17 rows. */
    @ParameterizedTest
    @EnumSource(value = TensorType.class, names = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q5_K", "Q6_K"})
    void rowsHaveIdenticalBitsWhateverTheRowCount(TensorType type) {
        Random random = new Random(7 + type.ordinal());
        byte[] w = ReferenceWeights.random(type, N, K, random);
        float[] x = randomFloats(random, LaunchGeometry.MAX_ROWS * K, 1f);
        float[] all = run(type, w, x, LaunchGeometry.MAX_ROWS);
        for (int rows : new int[] {1, 2, 5}) {
            float[] some = run(type, w, x, rows);
            for (int i = 0; i < rows * N; i++) {
                assertEquals(Float.floatToRawIntBits(all[i]), Float.floatToRawIntBits(some[i]),
                        type + ": row " + i / N + ", output " + i % N + " differs between R=" + rows + " and R=17");
            }
        }
    }

    @Test
    void rejectsShapesTheKernelCannotTake() {
        assertThrows(IllegalArgumentException.class, () -> LaunchGeometry.matvec(TensorType.Q4_K, 512 + 32, N, 1));
        assertThrows(IllegalArgumentException.class, () -> LaunchGeometry.matvec(TensorType.F16, 100, N, 1));
        assertThrows(IllegalArgumentException.class, () -> LaunchGeometry.matvec(TensorType.Q8_0, K, N, 18));
        assertThrows(IllegalArgumentException.class, () -> LaunchGeometry.matvec(TensorType.Q8_0, K, N, 0));
    }

    private float[] run(TensorType type, byte[] w, float[] x, int rows) {
        MemorySegment wSeg = weights(type, w, N, K), xSeg = floats(x), ySeg = floats(rows * N);
        kernels.launch(Kernel.matvec(type), LaunchGeometry.matvec(type, K, N, rows), wSeg, xSeg, ySeg, K, N, rows);
        return read(ySeg, rows * N);
    }
}
