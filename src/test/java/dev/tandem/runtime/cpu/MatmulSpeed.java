package dev.tandem.runtime.cpu;

import dev.tandem.model.Tensor;
import dev.tandem.model.TensorType;

import java.lang.foreign.Arena;

/**
 * Not a test: times CpuMatrix.multiply on matrices larger than the caches, for batches of 1..17 rows, and
 * prints weight traffic in GB/s and time(R)/time(1). Run with
 * {@code java --add-modules jdk.incubator.vector -cp target/classes:target/test-classes dev.tandem.runtime.cpu.MatmulSpeed [threads] [types...]}.
 */
public final class MatmulSpeed {
    /** Seconds to stream the weights once (row by row into per-task buffers): the bandwidth the kernels compete with. */
    private static double copySeconds(Tensor t, WorkerPool pool) {
        int rowBytes = Math.toIntExact(t.rowBytes()), rows = t.rows();
        byte[][] buffers = new byte[64][rowBytes * 16];
        java.util.function.IntConsumer copy = chunk -> {
            for (int o = chunk * 16; o < Math.min(rows, chunk * 16 + 16); o++) {
                java.lang.foreign.MemorySegment.copy(t.data(), java.lang.foreign.ValueLayout.JAVA_BYTE, (long) o * rowBytes, buffers[chunk % 64], (o % 16) * rowBytes, rowBytes);
            }
        };
        for (int i = 0; i < 20; i++) pool.forEach((rows + 15) / 16, copy);
        int reps = 0;
        long start = System.nanoTime(), elapsed;
        do {
            pool.forEach((rows + 15) / 16, copy);
            reps++;
        } while ((elapsed = System.nanoTime() - start) < 500_000_000L);
        return elapsed / 1e9 / reps;
    }

    public static void main(String[] args) {
        int threads = args.length > 0 ? Integer.parseInt(args[0]) : 2;
        String[] types = args.length > 1 ? java.util.Arrays.copyOfRange(args, 1, args.length) : new String[] {"q8_0", "f32", "q4_k"};
        int[] batches = Boolean.getBoolean("speed.few") ? new int[] {1, 2, 3, 4, 5} : new int[] {1, 2, 3, 5, 9, 17};
        int[][] shapes = Boolean.getBoolean("speed.large") ? new int[][] {{262144, 3072}} : new int[][] {{8192, 3072}, {3072, 8192}};
        System.out.println("species " + MatmulKernel.F + ", threads " + threads);
        try (WorkerPool pool = new WorkerPool(threads); Arena arena = Arena.ofShared()) {
            for (String name : types) {
                TensorType type = TensorType.parse(name);
                for (int[] shape : shapes) {
                    Tensor t = RandomMatrices.matrix(type, shape[0], shape[1], 1, arena);
                    CpuMatrix m = CpuMatrix.of(t);
                    Activations a = new Activations(17, shape[1]);
                    float[] x = RandomMatrices.activations(17, shape[1], 2);
                    float[] out = new float[17 * shape[0]];
                    double bytes = t.byteSize();
                    double base = 0;
                    System.out.printf("%s %dx%d (%.1f MB), plain copy of the weights: %.1f GB/s%n", type, shape[0], shape[1], bytes / 1e6,
                            bytes / copySeconds(t, pool) / 1e9);
                    for (int r : batches) {
                        a.load(x, r, shape[1]);
                        for (int i = 0; i < 20; i++) m.multiply(a, out, pool);   // warm-up
                        int reps = 0;
                        long start = System.nanoTime(), elapsed;
                        do {
                            a.load(x, r, shape[1]);                              // quantisation counted
                            m.multiply(a, out, pool);
                            reps++;
                        } while ((elapsed = System.nanoTime() - start) < 1_000_000_000L);
                        double seconds = elapsed / 1e9 / reps;
                        if (r == 1) base = seconds;
                        System.out.printf("  R=%2d  %8.3f ms  %6.1f GB/s  time(R)/time(1) %.2f%n", r, seconds * 1e3, bytes / seconds / 1e9, seconds / base);
                    }
                }
            }
        }
    }
}
