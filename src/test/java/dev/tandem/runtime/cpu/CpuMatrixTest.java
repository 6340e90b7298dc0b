package dev.tandem.runtime.cpu;

import dev.tandem.model.Tensor;
import dev.tandem.model.TensorType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.Arena;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CpuMatrixTest {
    private static final WorkerPool ONE = new WorkerPool(1);
    private static final WorkerPool TWO = new WorkerPool(2);
    private static final WorkerPool THREE = new WorkerPool(3);

    @AfterAll
    static void close() {
        ONE.close();
        TWO.close();
        THREE.close();
    }

    /** A row length valid for the type that is not a multiple of the lane count where the type allows it. */
    private static int oddColumns(TensorType type) {
        return switch (type) {
            case F32, F16, BF16 -> 37;
            case Q8_0, Q4_0 -> 96;
            default -> 256;
        };
    }

    private static float[] multiply(CpuMatrix m, float[] x, int rows, WorkerPool pool) {
        Activations a = new Activations(rows, m.columns());
        a.load(x, rows, m.columns());
        float[] out = new float[rows * m.rows()];
        m.multiply(a, out, pool);
        return out;
    }

    /**
     * multiply agrees with dequantise-then-dot within the activation rounding: for the float types only
     * float summation error (1e-5 of sum |w x|); with 8-bit activations each x_i moves by at most half its
     * block's step, amax/254, plus f16 rounding of the Q8_0 activation scale (amax 2^-11).
     */
    @ParameterizedTest
    @EnumSource(TensorType.class)
    void agreesWithTheReferenceDot(TensorType type) {
        for (int[] shape : new int[][] {{64, 512}, {7, oddColumns(type)}}) {
            int rows = shape[0], columns = shape[1], batch = 3;
            try (Arena arena = Arena.ofShared()) {
                Tensor t = RandomMatrices.matrix(type, rows, columns, 11, arena);
                CpuMatrix m = CpuMatrix.of(t);
                assertEquals(rows, m.rows());
                assertEquals(columns, m.columns());
                assertEquals(type, m.type());
                float[] x = RandomMatrices.activations(batch, columns, 12);
                float[] out = multiply(m, x, batch, TWO);
                int block = switch (type) {
                    case Q8_0, Q4_0 -> 32;
                    case Q4_K, Q5_K, Q6_K -> 256;
                    default -> 0;
                };
                float[] w = new float[columns];
                for (int r = 0; r < batch; r++) {
                    for (int o = 0; o < rows; o++) {
                        double expected = type.dotReference(t.data(), o * t.rowBytes(), x, r * columns, columns);
                        m.copyRow(o, w, 0);
                        double magnitude = 0, activationError = 0;
                        for (int i = 0; i < columns; i++) {
                            magnitude += Math.abs(w[i] * x[r * columns + i]);
                            if (block > 0) {
                                int from = r * columns + i / block * block;
                                float amax = 0;
                                for (int k = from; k < from + block; k++) amax = Math.max(amax, Math.abs(x[k]));
                                activationError += Math.abs(w[i]) * amax * (1 / 254.0 + 0x1p-11);
                            }
                        }
                        double bound = 1e-5 * magnitude + activationError + 1e-6;
                        assertEquals(expected, out[r * rows + o], bound, type + " " + rows + "x" + columns + " row " + o + " batch row " + r);
                    }
                }
            }
        }
    }

    /** The bitwise contract: a row's outputs do not depend on the batch it is in, nor on the thread count. */
    @ParameterizedTest
    @EnumSource(TensorType.class)
    void outputsAreBitIdenticalAcrossBatchSizesAndThreads(TensorType type) {
        int rows = 37, columns = oddColumns(type) == 37 ? 77 : 512;   // 37 rows: partial chunks and tiles
        try (Arena arena = Arena.ofShared()) {
            CpuMatrix m = CpuMatrix.of(RandomMatrices.matrix(type, rows, columns, 21, arena));
            float[] x = RandomMatrices.activations(40, columns, 22);
            float[][] single = new float[40][];
            for (int r = 0; r < 40; r++) single[r] = multiply(m, Arrays.copyOfRange(x, r * columns, (r + 1) * columns), 1, ONE);
            for (int batch : new int[] {1, 2, 5, 17, 40}) {                 // 40 > ROW_GROUP
                for (WorkerPool pool : new WorkerPool[] {ONE, TWO, THREE}) {
                    float[] out = multiply(m, x, batch, pool);
                    for (int r = 0; r < batch; r++) {
                        for (int o = 0; o < rows; o++) {
                            assertEquals(Float.floatToRawIntBits(single[r][o]), Float.floatToRawIntBits(out[r * rows + o]),
                                    type + " batch " + batch + " threads " + pool.threads() + " row " + r + " output " + o);
                        }
                    }
                }
            }
        }
    }

    @Test
    void activationsAreQuantisedAgainAfterALoad() {
        try (Arena arena = Arena.ofShared()) {
            CpuMatrix m = CpuMatrix.of(RandomMatrices.matrix(TensorType.Q8_0, 8, 64, 31, arena));
            float[] first = RandomMatrices.activations(1, 64, 32), second = RandomMatrices.activations(1, 64, 33);
            Activations a = new Activations(1, 64);
            float[] out = new float[8];
            a.load(first, 1, 64);
            m.multiply(a, out, ONE);
            a.load(second, 1, 64);
            m.multiply(a, out, ONE);
            assertArrayEquals(multiply(m, second, 1, ONE), out);
        }
    }

    @Test
    void copyRowDequantisesOneRow() {
        try (Arena arena = Arena.ofShared()) {
            Tensor t = RandomMatrices.matrix(TensorType.Q4_K, 3, 512, 41, arena);
            float[] row = new float[512 + 5];
            CpuMatrix.of(t).copyRow(2, row, 5);
            float[] expected = new float[512];
            TensorType.Q4_K.dequantize(t.data(), 2 * t.rowBytes(), expected, 0, 512);
            assertArrayEquals(expected, Arrays.copyOfRange(row, 5, 517));
        }
    }

    @Test
    void rejectsTensorsThatAreNotMatricesOfWholeBlocks() {
        try (Arena arena = Arena.ofShared()) {
            var vector = new Tensor("output_norm.weight", TensorType.F32, new long[] {64}, arena.allocate(256));
            var e = assertThrows(IllegalArgumentException.class, () -> CpuMatrix.of(vector));
            assertTrue(e.getMessage().contains("output_norm.weight"), e.getMessage());
            var ragged = new Tensor("blk.3.ffn_up.weight", TensorType.Q8_0, new long[] {48, 2}, arena.allocate(1024));
            e = assertThrows(IllegalArgumentException.class, () -> CpuMatrix.of(ragged));
            assertTrue(e.getMessage().contains("blk.3.ffn_up.weight") && e.getMessage().contains("48"), e.getMessage());
            var truncated = new Tensor("token_embd.weight", TensorType.F32, new long[] {64, 4}, arena.allocate(100));
            e = assertThrows(IllegalArgumentException.class, () -> CpuMatrix.of(truncated));
            assertTrue(e.getMessage().contains("token_embd.weight"), e.getMessage());
        }
    }

    @Test
    void rejectsActivationsOfTheWrongWidth() {
        try (Arena arena = Arena.ofShared()) {
            CpuMatrix m = CpuMatrix.of(RandomMatrices.matrix(TensorType.F32, 4, 64, 51, arena));
            Activations a = new Activations(2, 128);
            a.load(new float[128], 1, 128);
            var e = assertThrows(IllegalArgumentException.class, () -> m.multiply(a, new float[4], ONE));
            assertTrue(e.getMessage().contains("blk.0.test_f32.weight"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> a.load(new float[100], 1, 128));
            assertThrows(IllegalArgumentException.class, () -> a.load(new float[3 * 128], 3, 128));
        }
    }
}
