package dev.tandem.runtime.cpu;

import dev.tandem.model.Tensor;
import dev.tandem.model.TensorType;

import java.lang.foreign.Arena;
import java.lang.management.ManagementFactory;

/**
 * Not a test: thread CPU time and allocation of the Q8_0 direct kernel on the calling thread, per batch size
 * (less disturbed than wall time on a busy machine; any allocation means C2 boxed a vector). Run with
 * {@code java --add-modules jdk.incubator.vector -cp target/classes:target/test-classes dev.tandem.runtime.cpu.Q80CpuTime [rows]}.
 */
public final class Q80CpuTime {
    public static void main(String[] args) {
        int rows = Integer.parseInt(args.length > 0 ? args[0] : "65536"), columns = 3072;
        var bean = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        try (Arena arena = Arena.ofShared(); WorkerPool one = new WorkerPool(1)) {
            Tensor t = RandomMatrices.matrix(TensorType.Q8_0, rows, columns, 1, arena);
            Activations a = new Activations(17, columns);
            float[] x = RandomMatrices.activations(17, columns, 2);
            float[] out = new float[17 * rows];
            MatmulScratch s = MatmulScratch.forColumns(columns);
            double base = 0;
            for (int r : new int[] {1, 2, 3, 4, 5, 6, 9, 1}) {
                a.load(x, r, columns);
                a.prepareQ80(one);
                Runnable run = () -> MatmulQ80Direct.multiply(t.data(), t.rowBytes(), columns, 0, rows, a.q80Scaled(), r, out, rows, s.lanes);
                for (int i = 0; i < 40; i++) run.run();
                long alloc0 = bean.getCurrentThreadAllocatedBytes();
                long c0 = bean.getCurrentThreadCpuTime();
                int reps = 30;
                for (int i = 0; i < reps; i++) run.run();
                double sec = (bean.getCurrentThreadCpuTime() - c0) / 1e9 / reps;
                long alloc = (bean.getCurrentThreadAllocatedBytes() - alloc0) / reps;
                if (r == 1) base = sec;
                System.out.printf("R=%d  %.2f ms cpu  %.1f GB/s  ratio %.2f  alloc %d B/pass%n", r, sec * 1e3, t.byteSize() / sec / 1e9, sec / base, alloc);
            }
        }
    }
}
