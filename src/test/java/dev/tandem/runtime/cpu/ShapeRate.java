package dev.tandem.runtime.cpu;

import dev.tandem.model.Tensor;
import dev.tandem.model.TensorType;

import java.lang.foreign.Arena;

/**
 * Not a test: one-row CpuMatrix.multiply over matrices larger than the caches, best of 40, in GB/s of weights, for
 * each (rows, columns) given: how a kernel's speed depends on the row length (the activation row has to stay in L1
 * beside the streaming weights). Run with {@code java -Dtype=q8_0 --add-modules jdk.incubator.vector
 * -cp target/classes:target/test-classes dev.tandem.runtime.cpu.ShapeRate THREADS ROWS COLUMNS [ROWS COLUMNS...]},
 * e.g. {@code 1 65536 3072 24576 8192} (two shapes of the same 200 MB).
 */
public final class ShapeRate {
    public static void main(String[] args) {
        int threads = Integer.parseInt(args[0]);
        TensorType type = TensorType.parse(System.getProperty("type", "q8_0"));
        try (WorkerPool pool = new WorkerPool(threads); Arena arena = Arena.ofShared()) {
            for (int k = 1; k + 1 < args.length; k += 2) {
                int rows = Integer.parseInt(args[k]), columns = Integer.parseInt(args[k + 1]);
                Tensor t = RandomMatrices.matrix(type, rows, columns, 1, arena);
                CpuMatrix m = CpuMatrix.of(t);
                Activations a = new Activations(1, columns);
                a.load(RandomMatrices.activations(1, columns, 2), 1, columns);
                float[] out = new float[rows];
                double best = Double.MAX_VALUE;
                for (int i = 0; i < 40; i++) {
                    long start = System.nanoTime();
                    m.multiply(a, out, pool);
                    best = Math.min(best, (System.nanoTime() - start) / 1e6);
                }
                System.out.printf("%s %d x %d: %.2f ms, %.1f GB/s%n", type, rows, columns, best, t.byteSize() / best / 1e6);
            }
        }
    }
}
