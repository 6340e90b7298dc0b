package dev.tandem.runtime.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tandem.model.TensorType;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Random;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Embedding, RMSNorm, SwiGLU, bias add and argmax against scalar references. */
class ElementwiseKernelTest extends KernelTestSupport {

    /** Each output row is the token's decoded row, to float rounding of the scale products (1e-6 of the row's largest value). */
    @ParameterizedTest
    @EnumSource(value = TensorType.class, names = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q5_K", "Q6_K"})
    void embeddingGathersDecodedRows(TensorType type) {
        int k = 512, vocab = 11;
        Random random = new Random(3 + type.ordinal());
        byte[] w = ReferenceWeights.random(type, vocab, k, random);
        int[] tokens = {4, 0, 10, 4, 7};
        MemorySegment out = floats(tokens.length * k);
        kernels.launch(Kernel.embedding(type), LaunchGeometry.embedding(type, k, tokens.length), weights(type, w, vocab, k), ints(tokens), out, k, vocab);
        float[] got = read(out, tokens.length * k);
        for (int r = 0; r < tokens.length; r++) {
            double[] row = ReferenceWeights.decode(type, w, tokens[r], k);
            double max = Arrays.stream(row).map(Math::abs).max().orElseThrow();
            double[] mag = new double[k];
            Arrays.fill(mag, max);
            assertClose(type + " embedding row " + r, row, Arrays.copyOfRange(got, r * k, (r + 1) * k), mag, 1e-6);
        }
    }

    /**
     * On the host emulation (float operations as Java's, no FMA contraction) an embedding row has exactly the bits of
     * the CPU backend's dequantisation of the stored row ({@link TensorType#dequantize}); a token outside the
     * vocabulary gives zeros.
     */
    @ParameterizedTest
    @EnumSource(value = TensorType.class, names = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q5_K", "Q6_K"})
    void embeddingRowsAreTheCpuDequantisationBitForBit(TensorType type) {
        int k = 768, vocab = 9;
        byte[] w = ReferenceWeights.random(type, vocab, k, new Random(31 + type.ordinal()));
        int[] tokens = {8, 0, 3, -1, 9};
        MemorySegment out = floats(tokens.length * k);
        kernels.launch(Kernel.embedding(type), LaunchGeometry.embedding(type, k, tokens.length), weights(type, w, vocab, k), ints(tokens), out, k, vocab);
        float[] got = read(out, tokens.length * k);
        for (int r = 0; r < tokens.length; r++) {
            float[] expected = new float[k];
            if (tokens[r] >= 0 && tokens[r] < vocab) type.dequantize(MemorySegment.ofArray(w), tokens[r] * type.bytesFor(k), expected, 0, k);
            for (int i = 0; i < k; i++) {
                assertEquals(Float.floatToRawIntBits(expected[i]), Float.floatToRawIntBits(got[r * k + i]),
                        type + " embedding of token " + tokens[r] + ", element " + i + ": expected " + expected[i] + ", got " + got[r * k + i]);
            }
        }
    }

    @Test
    void rmsnormScalesByInverseRootMeanSquare() {
        int k = 1000, rows = 3;
        float eps = 1e-5f;
        Random random = new Random(11);
        float[] x = randomFloats(random, rows * k, 3f), weight = randomFloats(random, k, 1f);
        MemorySegment out = floats(rows * k);
        kernels.launch(Kernel.RMSNORM, LaunchGeometry.rmsnorm(rows), floats(x), floats(weight), out, k, eps);
        assertNorm(x, weight, eps, k, read(out, rows * k));
    }

    @Test
    void fusedResidualAddsThenNormalises() {
        int k = 768, rows = 2;
        float eps = 1e-6f;
        Random random = new Random(12);
        float[] residual = randomFloats(random, rows * k, 2f), delta = randomFloats(random, rows * k, 1f);
        float[] weight = randomFloats(random, k, 1f);
        MemorySegment res = floats(residual), out = floats(rows * k);
        kernels.launch(Kernel.RMSNORM_RESIDUAL, LaunchGeometry.rmsnorm(rows), res, floats(delta), floats(weight), out, k, eps);
        float[] sum = new float[rows * k];
        for (int i = 0; i < sum.length; i++) sum[i] = residual[i] + delta[i];
        assertTrue(Arrays.equals(sum, read(res, rows * k)), "residual must become residual + delta (one float add each)");
        assertNorm(sum, weight, eps, k, read(out, rows * k));
    }

    private static void assertNorm(float[] x, float[] weight, float eps, int k, float[] got) {
        double[] expected = new double[x.length], mag = new double[x.length];
        for (int r = 0; r < x.length / k; r++) {
            double ss = 0;
            for (int i = 0; i < k; i++) ss += (double) x[r * k + i] * x[r * k + i];
            double scale = 1 / Math.sqrt(ss / k + eps);
            for (int i = 0; i < k; i++) {
                expected[r * k + i] = x[r * k + i] * scale * weight[i];
                mag[r * k + i] = Math.abs(expected[r * k + i]) + 1e-30;
            }
        }
        assertClose("rmsnorm", expected, got, mag, 1e-5);
    }

    @Test
    void swigluIsSiluOfGateTimesUp() {
        int n = 1000;
        Random random = new Random(13);
        float[] gate = randomFloats(random, n, 8f), up = randomFloats(random, n, 2f);
        MemorySegment out = floats(n);
        kernels.launch(Kernel.SWIGLU, LaunchGeometry.elementwise(n), floats(gate), floats(up), out, n);
        double[] expected = new double[n], mag = new double[n];
        for (int i = 0; i < n; i++) {
            expected[i] = gate[i] / (1 + Math.exp(-gate[i])) * up[i];
            mag[i] = Math.abs(expected[i]) + 1e-30;
        }
        assertClose("swiglu", expected, read(out, n), mag, 1e-6);
    }

    @Test
    void biasAddAddsTheBiasToEveryRow() {
        int width = 48, rows = 3;
        Random random = new Random(14);
        float[] y = randomFloats(random, width * rows, 1f), bias = randomFloats(random, width, 1f);
        MemorySegment ySeg = floats(y);
        kernels.launch(Kernel.BIAS_ADD, LaunchGeometry.elementwise(y.length), ySeg, floats(bias), width, y.length);
        float[] got = read(ySeg, y.length);
        for (int i = 0; i < y.length; i++) assertEquals(y[i] + bias[i % width], got[i], 0f, "element " + i);
    }

    @Test
    void argmaxPicksTheLowestIdAmongEqualMaxima() {
        int n = 5000;
        Random random = new Random(15);
        float[] logits = randomFloats(random, 4 * n, 10f);
        // Row 0: equal maxima owned by different threads (ids 4100 > 300 > 7 ... the lowest, 7, must win).
        logits[4100] = 50f;
        logits[300] = 50f;
        logits[7 + 256] = 50f;
        logits[7] = 50f;
        // Row 1: a single maximum at the very end.
        logits[n + n - 1] = 99f;
        // Row 2: all equal: id 0 wins.
        Arrays.fill(logits, 2 * n, 3 * n, -1f);
        // Row 3: all -infinity: still a real id, the lowest.
        Arrays.fill(logits, 3 * n, 4 * n, Float.NEGATIVE_INFINITY);
        MemorySegment out = ints(new int[4]), tops = floats(4);
        kernels.launch(Kernel.ARGMAX, LaunchGeometry.argmax(4), floats(logits), out, tops, n);
        int[] ids = readInts(out, 4);
        assertEquals(7, ids[0]);
        assertEquals(n - 1, ids[1]);
        assertEquals(0, ids[2]);
        assertEquals(0, ids[3]);
        // The top token's softmax probability, as the CPU computes it; none for a row without a finite maximum.
        float[] top = read(tops, 4);
        for (int r = 0; r < 3; r++) {
            float cpu = dev.tandem.runtime.ForwardResult.topProbability(logits, r * n, n);
            assertEquals(cpu, top[r], 1e-5f * cpu, "row " + r);
        }
        assertEquals(1f / n, top[2], 1e-6f, "all equal: 1/n");
        assertEquals(0f, top[3]);
    }

    @Test
    void refusedLaunchesRaiseANamedException() {
        MemorySegment out = ints(new int[1]);
        KernelLaunchException e = assertThrows(KernelLaunchException.class,
                () -> kernels.launch(Kernel.ARGMAX, LaunchDims.linear(1, 2048), floats(16), out, MemorySegment.NULL, 16));
        assertTrue(e.getMessage().contains("argmax") && e.getMessage().contains("2048"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> kernels.launch(Kernel.ARGMAX, LaunchGeometry.argmax(1), floats(16), out));
        assertThrows(IllegalArgumentException.class, () -> kernels.launch(Kernel.ARGMAX, LaunchGeometry.argmax(1), floats(16), out, MemorySegment.NULL, 16f));
    }
}
