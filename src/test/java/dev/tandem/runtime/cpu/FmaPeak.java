package dev.tandem.runtime.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/**
 * Not a test: the machine's FMA throughput with the preferred float species, eight independent chains over
 * L1-resident data on one thread, in vector FMAs per ns. The arithmetic ceiling of a multi-row pass (see
 * bench/cpu-decode.md). Run with {@code java --add-modules jdk.incubator.vector -cp target/classes:target/test-classes
 * dev.tandem.runtime.cpu.FmaPeak}.
 */
public final class FmaPeak {
    private static float fmas(float[] x, int repeats) {
        var f = MatmulKernel.F;
        int l = f.length();
        FloatVector a0 = FloatVector.zero(f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        for (int k = 0; k < repeats; k++) {
            for (int i = 0; i + 8 * l <= x.length; i += 8 * l) {
                a0 = FloatVector.fromArray(f, x, i).fma(a0, a0);
                a1 = FloatVector.fromArray(f, x, i + l).fma(a1, a1);
                a2 = FloatVector.fromArray(f, x, i + 2 * l).fma(a2, a2);
                a3 = FloatVector.fromArray(f, x, i + 3 * l).fma(a3, a3);
                a4 = FloatVector.fromArray(f, x, i + 4 * l).fma(a4, a4);
                a5 = FloatVector.fromArray(f, x, i + 5 * l).fma(a5, a5);
                a6 = FloatVector.fromArray(f, x, i + 6 * l).fma(a6, a6);
                a7 = FloatVector.fromArray(f, x, i + 7 * l).fma(a7, a7);
            }
        }
        return a0.add(a1).add(a2).add(a3).add(a4).add(a5).add(a6).add(a7).reduceLanes(VectorOperators.ADD);
    }

    public static void main(String[] args) {
        float[] x = new float[8 * 128];
        java.util.Arrays.fill(x, 1e-3f);
        int repeats = 200_000;
        long fmasPerRun = (long) repeats * (x.length / MatmulKernel.L);
        for (int round = 0; round < 8; round++) {
            long start = System.nanoTime();
            float sink = fmas(x, repeats);
            long ns = System.nanoTime() - start;
            System.out.printf("%s: %.2f vector FMAs per ns%s%n", MatmulKernel.F, (double) fmasPerRun / ns, sink == 42 ? " " : "");
        }
    }
}
