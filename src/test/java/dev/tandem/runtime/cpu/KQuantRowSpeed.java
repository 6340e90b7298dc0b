package dev.tandem.runtime.cpu;

import dev.tandem.model.Tensor;
import dev.tandem.model.TensorType;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Not a test: times {@link MatmulKQuantRow} alone on one thread (type rows columns reps batch, batch 1 or 2) and
 * prints the best time and a hash of the output bits, so two builds can be compared run against run. Run with
 * {@code java --add-modules jdk.incubator.vector -cp target/classes:target/test-classes
 * dev.tandem.runtime.cpu.KQuantRowSpeed q4_k 256 3072 300 1} (256 x 3072 stays in a core's L2: this measures
 * the kernel's instructions, not memory).
 */
public final class KQuantRowSpeed {
    public static void main(String[] args) {
        TensorType type = TensorType.parse(args[0]);
        int rows = Integer.parseInt(args[1]), columns = Integer.parseInt(args[2]), reps = Integer.parseInt(args[3]), batch = Integer.parseInt(args[4]);
        try (Arena arena = Arena.ofShared(); WorkerPool pool = new WorkerPool(1)) {
            Tensor t = RandomMatrices.matrix(type, rows, columns, 1, arena);
            Activations act = new Activations(2, columns);
            act.load(RandomMatrices.activations(2, columns, 2), 2, columns);
            act.prepareQ8K(pool);
            float[] xq = act.q8kValues(), xs = act.q8kScales();
            int[] xsum = act.q8kSums();
            MemorySegment w = t.data();
            long rowBytes = t.rowBytes();
            float[] lanes = new float[MatmulKernel.L], out = new float[2 * rows];
            boolean q4 = type == TensorType.Q4_K;
            long best = Long.MAX_VALUE;
            for (int rep = 0; rep < reps; rep++) {
                long start = System.nanoTime();
                for (int o = 0; o < rows; o++) {
                    long at = o * rowBytes;
                    if (batch == 2) {
                        if (q4) MatmulKQuantRow.q4k2(w, at, columns, xq, xs, xsum, 0, out, rows, o, lanes);
                        else MatmulKQuantRow.q6k2(w, at, columns, xq, xs, 0, out, rows, o, lanes);
                    } else {
                        out[o] = q4 ? MatmulKQuantRow.q4k(w, at, columns, xq, xs, xsum, 0, lanes) : MatmulKQuantRow.q6k(w, at, columns, xq, xs, 0, lanes);
                    }
                }
                best = Math.min(best, System.nanoTime() - start);
            }
            long hash = 0;
            for (int o = 0; o < batch * rows; o++) hash = hash * 31 + Float.floatToRawIntBits(out[o]);
            System.out.printf("%s x%d rows: %.3f ms, %.2f GB/s, output bits %016x%n", type, batch, best / 1e6, t.byteSize() / (best / 1e9) / 1e9, hash);
        }
    }
}
