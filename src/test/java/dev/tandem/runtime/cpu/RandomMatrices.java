package dev.tandem.runtime.cpu;

import dev.tandem.model.Tensor;
import dev.tandem.model.TensorType;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Random;

/** Seeded random weight matrices and activations for the kernel tests and the speed driver. */
final class RandomMatrices {
    private RandomMatrices() {}

    static Tensor matrix(TensorType type, int rows, int columns, long seed, Arena arena) {
        Random random = new Random(seed);
        MemorySegment data = arena.allocate(type.bytesFor((long) rows * columns), 64);
        float[] row = new float[columns];
        for (int o = 0; o < rows; o++) {
            for (int i = 0; i < columns; i++) row[i] = (float) random.nextGaussian() * 0.05f;
            type.quantize(row, 0, columns, data, o * type.bytesFor(columns));
        }
        return new Tensor("blk.0.test_" + type.name().toLowerCase() + ".weight", type, new long[] {columns, rows}, data);
    }

    static float[] activations(int rows, int columns, long seed) {
        Random random = new Random(seed);
        float[] x = new float[rows * columns];
        for (int i = 0; i < x.length; i++) x[i] = (float) random.nextGaussian();
        return x;
    }
}
