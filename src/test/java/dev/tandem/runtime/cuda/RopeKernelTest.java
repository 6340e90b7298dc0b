package dev.tandem.runtime.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.MemorySegment;
import java.util.Random;

import org.junit.jupiter.api.Test;

/**
 * RoPE against the rotation written out by hand: pair i turns by pos * base^(-2i/rotDim) / factor[i]; normal
 * layout pairs (2i, 2i+1), NeoX pairs (i, i + rotDim/2). Tolerance: 2e-4 of the head's largest element, which
 * covers float angles at positions up to ~700 (angle error ~ pos x 2^-24 x a few).
 */
class RopeKernelTest extends KernelTestSupport {
    static final int HEADS = 3, HEAD_DIM = 64;
    static final int[] POSITIONS = {0, 1, 17, 700};

    @Test
    void normalLayoutRotatesAdjacentPairs() { check(false, HEAD_DIM, null); }

    @Test
    void neoxLayoutRotatesHalves() { check(true, HEAD_DIM, null); }

    @Test
    void frequencyFactorsDivideTheAngle() {
        float[] factors = new float[HEAD_DIM / 2];
        for (int i = 0; i < factors.length; i++) factors[i] = i < 8 ? 1f : i < 20 ? 2.5f : 8f;  // Llama 3 shape
        check(false, HEAD_DIM, factors);
        check(true, HEAD_DIM, factors);
    }

    @Test
    void partialRotationLeavesTheTailAlone() { check(true, 32, null); }

    private void check(boolean neox, int rotDim, float[] factors) {
        int rows = POSITIONS.length;
        float base = 500000f;
        Random random = new Random(neox ? 21 : 22);
        float[] x = randomFloats(random, rows * HEADS * HEAD_DIM, 2f);
        MemorySegment xs = floats(x);
        kernels.launch(Kernel.ROPE, LaunchGeometry.rope(rows, HEADS, rotDim), xs, ints(POSITIONS),
                factors == null ? MemorySegment.NULL : floats(factors), rows, HEADS, HEAD_DIM, rotDim, base, neox ? 1 : 0);
        float[] got = read(xs, x.length);

        double[] expected = new double[x.length], mag = new double[x.length];
        java.util.Arrays.fill(mag, 2.0 * Math.sqrt(2));
        for (int r = 0; r < rows; r++) {
            for (int h = 0; h < HEADS; h++) {
                int o = (r * HEADS + h) * HEAD_DIM;
                for (int i = HEAD_DIM - 1; i >= rotDim; i--) expected[o + i] = x[o + i];
                for (int i = 0; i < rotDim / 2; i++) {
                    double theta = POSITIONS[r] * Math.pow(base, -2.0 * i / rotDim) / (factors == null ? 1 : factors[i]);
                    int a = neox ? i : 2 * i, b = neox ? i + rotDim / 2 : 2 * i + 1;
                    expected[o + a] = x[o + a] * Math.cos(theta) - x[o + b] * Math.sin(theta);
                    expected[o + b] = x[o + a] * Math.sin(theta) + x[o + b] * Math.cos(theta);
                }
                for (int i = rotDim; i < HEAD_DIM; i++) {
                    assertEquals(x[o + i], got[o + i], 0f, "element " + i + " is past rotDim and must not change");
                }
            }
        }
        assertClose((neox ? "neox" : "normal") + " rope", expected, got, mag, 2e-4);
    }
}
