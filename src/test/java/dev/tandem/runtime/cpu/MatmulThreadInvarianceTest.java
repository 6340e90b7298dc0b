package dev.tandem.runtime.cpu;

import dev.tandem.model.ModelFile;
import dev.tandem.model.Tensor;
import dev.tandem.testing.SharedData;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** A matrix product gives the same bits on one thread as on two, warm or cold (200 rounds let the JIT step in). */
class MatmulThreadInvarianceTest {
    @Test
    void oneThreadEqualsTwo() {
        try (ModelFile f = ModelFile.open(SharedData.kjv("kjv-main-q8_0.gguf")); WorkerPool one = new WorkerPool(1); WorkerPool two = new WorkerPool(2)) {
            for (String name : new String[] {"blk.0.attn_q.weight", "blk.0.ffn_down.weight", "output.weight", "blk.0.attn_k.weight"}) {
                CpuMatrix m = CpuMatrix.of(f.tensor(name));
                int cols = m.columns(), rows = m.rows();
                Random rnd = new Random(1);
                for (int rep = 0; rep < 100; rep++) {
                    for (int R : new int[] {1, 2, 3, 4, 5}) {
                        float[] x = new float[R * cols];
                        for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian();
                        Activations a = new Activations(R, cols);
                        a.load(x, R, cols);
                        float[] o1 = new float[R * rows], o2 = new float[R * rows];
                        m.multiply(a, o1, one);
                        Activations b = new Activations(R, cols);
                        b.load(x, R, cols);
                        m.multiply(b, o2, two);
                        for (int o = 0; o < o1.length; o++) {
                            assertEquals(Float.floatToRawIntBits(o1[o]), Float.floatToRawIntBits(o2[o]), name + " rep " + rep + " R=" + R + " i=" + o + " " + o1[o] + " vs " + o2[o]);
                        }
                    }
                }
            }
        }
    }
}
