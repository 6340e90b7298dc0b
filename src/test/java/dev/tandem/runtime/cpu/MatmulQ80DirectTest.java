package dev.tandem.runtime.cpu;

import dev.tandem.model.Tensor;
import dev.tandem.model.TensorType;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The register-blocked Q8_0 kernel computes exactly what the unpacking kernel computes, for any batch. */
class MatmulQ80DirectTest {
    @Test
    void sameBitsAsTheUnpackingKernelForEveryBatchSize() {
        assumeTrue(MatmulQ80Direct.supported(), "no 8- or 16-lane float vectors on this machine");
        try (Arena arena = Arena.ofShared(); WorkerPool pool = new WorkerPool(2)) {
            Tensor w = RandomMatrices.matrix(TensorType.Q8_0, 37, 320, 7, arena); // odd row count: a row paired with itself
            CpuMatrix direct = CpuMatrix.of(w);
            System.setProperty("tandem.cpu.unpackingKernels", "true");
            CpuMatrix unpacking;
            try {
                unpacking = CpuMatrix.of(w);
            } finally {
                System.clearProperty("tandem.cpu.unpackingKernels");
            }
            for (int rows : new int[] {1, 2, 3, 4, 5, 7, 9, 17}) {
                float[] x = RandomMatrices.activations(rows, 320, rows);
                Activations a = new Activations(rows, 320);
                a.load(x, rows, 320);
                float[] got = new float[rows * 37], want = new float[rows * 37];
                direct.multiply(a, got, pool);
                Activations b = new Activations(rows, 320);
                b.load(x, rows, 320);
                unpacking.multiply(b, want, pool);
                for (int i = 0; i < got.length; i++) {
                    assertEquals(Float.floatToRawIntBits(want[i]), Float.floatToRawIntBits(got[i]), "rows " + rows + ", element " + i);
                }
            }
        }
    }
}
