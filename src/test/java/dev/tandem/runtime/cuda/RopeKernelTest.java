package dev.tandem.runtime.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.MemorySegment;
import java.util.Random;

import dev.tandem.runtime.KvType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

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

    /**
     * rope_kv_append leaves the bits that rope on q, rope on k and kv_append leave: q rotated in place, k rotated
     * and v copied into the rows' cache slots (through a scattered block table), for every cache type, both
     * layouts, a partial rotation and frequency factors; the k and v inputs are left alone.
     */
    @ParameterizedTest
    @CsvSource({"F32, false, 64", "F32, true, 32", "F16, false, 64", "F16, true, 64", "BF16, true, 32"})
    void ropeWithAppendMatchesTheThreePasses(KvType type, boolean neox, int rotDim) {
        int kvHeads = 2, rows = POSITIONS.length, block = 16, poolBlocks = 48, kvRow = kvHeads * HEAD_DIM;
        float base = 10000f;
        Random random = new Random(31 + rotDim + (neox ? 1 : 0));
        float[] q = randomFloats(random, rows * HEADS * HEAD_DIM, 2f), k = randomFloats(random, rows * kvRow, 2f);
        float[] v = randomFloats(random, rows * kvRow, 2f);
        float[] factors = new float[rotDim / 2];
        for (int i = 0; i < factors.length; i++) factors[i] = i < 4 ? 1f : 3f;
        int[] table = new int[poolBlocks];
        for (int i = 0; i < poolBlocks; i++) table[i] = (i * 7 + 3) % poolBlocks;
        int elementBytes = type == KvType.F32 ? 4 : 2;
        long poolBytes = (long) poolBlocks * block * kvRow * elementBytes;
        MemorySegment positions = ints(POSITIONS), factorSeg = floats(factors), tableSeg = ints(table);

        MemorySegment q1 = floats(q), k1 = floats(k), kc1 = device(poolBytes), vc1 = device(poolBytes);
        kernels.launch(Kernel.ROPE, LaunchGeometry.rope(rows, HEADS, rotDim), q1, positions, factorSeg, rows, HEADS, HEAD_DIM, rotDim, base, neox ? 1 : 0);
        kernels.launch(Kernel.ROPE, LaunchGeometry.rope(rows, kvHeads, rotDim), k1, positions, factorSeg, rows, kvHeads, HEAD_DIM, rotDim, base, neox ? 1 : 0);
        kernels.launch(Kernel.kvAppend(type), LaunchGeometry.kvAppend(rows), k1, floats(v), kc1, vc1, tableSeg, positions, kvHeads, HEAD_DIM, block);

        MemorySegment q2 = floats(q), k2 = floats(k), v2 = floats(v), kc2 = device(poolBytes), vc2 = device(poolBytes);
        kernels.launch(Kernel.ropeKvAppend(type), LaunchGeometry.ropeKvAppend(rows), q2, k2, v2, kc2, vc2, tableSeg, positions, factorSeg,
                HEADS, kvHeads, HEAD_DIM, rotDim, base, neox ? 1 : 0, block);

        assertEquals(-1, q1.mismatch(q2), "rotated queries differ");
        assertEquals(-1, kc1.mismatch(kc2), "cached keys differ");
        assertEquals(-1, vc1.mismatch(vc2), "cached values differ");
        assertEquals(-1, k2.mismatch(floats(k)), "the key input must not change");
    }

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
