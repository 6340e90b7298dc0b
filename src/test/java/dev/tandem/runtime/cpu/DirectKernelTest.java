package dev.tandem.runtime.cpu;

import dev.tandem.model.Tensor;
import dev.tandem.model.TensorType;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.Arena;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The kernels that read weights straight from the file (Q8_0 for any batch, Q4_K and Q6_K for batches of up to 9
 * rows, F32 and BF16 for one row) compute exactly what the unpacking kernels compute, for every batch size.
 */
class DirectKernelTest {
    @ParameterizedTest
    @EnumSource(value = TensorType.class, names = {"Q8_0", "Q4_K", "Q6_K", "F32", "BF16"})
    void sameBitsAsTheUnpackingKernelForEveryBatchSize(TensorType type) {
        assumeTrue(MatmulQ80Direct.supported(), "no 8- or 16-lane float vectors on this machine");
        int columns = switch (type) {
            case Q8_0 -> 2080;
            case F32, BF16 -> 779;  // not a multiple of the lanes: the scalar tail too
            default -> 768;
        };
        try (Arena arena = Arena.ofShared(); WorkerPool pool = new WorkerPool(2)) {
            Tensor w = RandomMatrices.matrix(type, 37, columns, 7, arena); // odd row count: a row paired with itself
            CpuMatrix direct = CpuMatrix.of(w);
            System.setProperty("tandem.cpu.unpackingKernels", "true");
            CpuMatrix unpacking;
            try {
                unpacking = CpuMatrix.of(w);
            } finally {
                System.clearProperty("tandem.cpu.unpackingKernels");
            }
            for (int rows : new int[] {1, 2, 3, 4, 5, 7, 9, 17}) {
                for (int seed = 0; seed < 3; seed++) {
                    float[] x = RandomMatrices.activations(rows, columns, 100 * rows + seed);
                    Activations a = new Activations(rows, columns);
                    a.load(x, rows, columns);
                    float[] got = new float[rows * 37], want = new float[rows * 37];
                    direct.multiply(a, got, pool);
                    Activations b = new Activations(rows, columns);
                    b.load(x, rows, columns);
                    unpacking.multiply(b, want, pool);
                    for (int i = 0; i < got.length; i++) {
                        assertEquals(Float.floatToRawIntBits(want[i]), Float.floatToRawIntBits(got[i]), type + ", rows " + rows + ", element " + i);
                    }
                }
            }
        }
    }
}
