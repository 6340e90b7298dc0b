package dev.tandem.model.quant;

import dev.tandem.model.TensorType;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * quantise -> dequantise stays within each format's error bound, stated per element from the block's own
 * scales (so the bound is the format's resolution, not a fitted number).
 */
class WeightFormatRoundTripTest {
    private static final int N = 4096;

    private static float[] gaussian(long seed) {
        Random random = new Random(seed);
        float[] x = new float[N];
        for (int i = 0; i < N; i++) x[i] = (float) (random.nextGaussian() * (1 + i % 7));
        for (int i = 0; i < 32; i++) x[100 + i] = 0;          // an all-zero block must survive
        return x;
    }

    private static MemorySegment encode(TensorType type, float[] x) {
        MemorySegment s = Arena.ofAuto().allocate(type.bytesFor(N));
        type.quantize(x, 0, N, s, 0);
        return s;
    }

    private static float[] decode(TensorType type, MemorySegment s) {
        float[] y = new float[N];
        type.dequantize(s, 0, y, 0, N);
        return y;
    }

    private static float amax(float[] x, int from, int length) {
        float m = 0;
        for (int i = from; i < from + length; i++) m = Math.max(m, Math.abs(x[i]));
        return m;
    }

    @Test
    void floatsRoundOnce() {
        float[] x = gaussian(1);
        float[] f32 = decode(TensorType.F32, encode(TensorType.F32, x));
        float[] f16 = decode(TensorType.F16, encode(TensorType.F16, x));
        float[] bf16 = decode(TensorType.BF16, encode(TensorType.BF16, x));
        for (int i = 0; i < N; i++) {
            assertEquals(x[i], f32[i]);
            assertEquals(x[i], f16[i], Math.abs(x[i]) * 0x1p-11 + 0x1p-25, "f16 " + i);  // half an ulp, 10-bit mantissa
            assertEquals(x[i], bf16[i], Math.abs(x[i]) * 0x1p-8, "bf16 " + i);           // half an ulp, 7-bit mantissa
        }
    }

    @Test
    void q8_0IsWithinHalfAStep() {
        float[] x = gaussian(2);
        float[] y = decode(TensorType.Q8_0, encode(TensorType.Q8_0, x));
        for (int i = 0; i < N; i++) {
            float amax = amax(x, i / 32 * 32, 32);
            // step d = amax/127; storing d as f16 moves the largest level (127 d = amax) by up to amax 2^-11
            assertEquals(x[i], y[i], amax / 254 + amax * 0x1p-11 + 1e-7f, "element " + i);
        }
    }

    @Test
    void q4_0IsWithinOneStep() {
        float[] x = gaussian(3);
        float[] y = decode(TensorType.Q4_0, encode(TensorType.Q4_0, x));
        for (int i = 0; i < N; i++) {
            float amax = amax(x, i / 32 * 32, 32);
            // step |d| = amax/8; the element at -max lands on level 16 and is clamped to 15: one full step
            assertEquals(x[i], y[i], amax / 8 + amax * 0x1p-10 + 1e-7f, "element " + i);
        }
    }

    @Test
    void kQuantsAreWithinTheirSubBlockSteps() {
        for (TensorType type : new TensorType[] {TensorType.Q4_K, TensorType.Q5_K}) {
            float[] x = gaussian(4);
            MemorySegment s = encode(type, x);
            float[] y = decode(type, s);
            for (int i = 0; i < N; i++) {
                long block = (long) (i / 256) * type.blockBytes();
                float d = HalfFloat.toFloat(s.get(LittleEndian.SHORT, block));
                float dmin = HalfFloat.toFloat(s.get(LittleEndian.SHORT, block + 2));
                int j = i % 256 / 32;
                float step = d * KScales.scale(s, block + 4, j);
                // half a step from rounding, plus up to half a dmin step from the rounded min (which can push
                // the range ends past the grid, costing at most that much again at the clamp)
                assertEquals(x[i], y[i], step / 2 + dmin + 1e-6f, type + " element " + i);
            }
        }
    }

    @Test
    void q6_KIsWithinOneStep() {
        float[] x = gaussian(5);
        MemorySegment s = encode(TensorType.Q6_K, x);
        float[] y = decode(TensorType.Q6_K, s);
        for (int i = 0; i < N; i++) {
            long block = (long) (i / 256) * 210;
            float d = HalfFloat.toFloat(s.get(LittleEndian.SHORT, block + 208));
            float step = Math.abs(d * s.get(LittleEndian.BYTE, block + 192 + i % 256 / 16));
            // half a step, or a whole one for the element at -max that lands on +32 and is clamped to 31
            assertEquals(x[i], y[i], step + 1e-6f, "element " + i);
        }
    }

    @Test
    void dotReferenceIsTheDotOfTheDequantisedValues() {
        float[] w = gaussian(6), x = gaussian(7);
        for (TensorType type : TensorType.values()) {
            MemorySegment s = encode(type, w);
            float[] y = decode(type, s);
            double expected = 0;
            for (int i = 0; i < 256; i++) expected += (double) y[256 + i] * x[i];
            assertEquals(expected, type.dotReference(s, type.bytesFor(256), x, 0, 256), 0.0, type.toString());
            assertTrue(Math.abs(expected) > 0);
        }
    }
}
