package dev.tandem.runtime.cuda;

import dev.tandem.model.TensorType;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The prefill GEMM seam ({@link Gemm}) on the host emulation: the emulated gemmEx is the FP32 sum of widened
 * 16-bit products in cuBLAS's column-major convention, and the narrowing kernels round to nearest even
 * ({@link CudaGemmPrefillModelTest}: a KJV prompt prefilled through it).
 */
class CudaGemmPrefillTest extends KernelTestSupport {
    static final int F16 = 2, BF16 = 14;

    @Test
    void hostGemmExSumsWidenedProductsInFloat() {
        Random random = new Random(4);
        int m = 5, n = 7, k = 40, ldc = 9;   // C has two more columns than this product writes
        for (int type : new int[] {F16, BF16}) {
            short[] a = new short[m * k], b = new short[n * k];
            for (int i = 0; i < a.length; i++) a[i] = narrow((float) random.nextGaussian(), type);
            for (int i = 0; i < b.length; i++) b[i] = narrow((float) random.nextGaussian(), type);
            float[] c = new float[m * ldc];
            Arrays.fill(c, 42f);
            MemorySegment as = shorts(a), bs = shorts(b), cs = floats(c);
            // Row-major C[m][n] = A[m][k]·B[n][k]ᵀ as cuBLAS sees it: gemmEx(T, N, n, m, k, 1, B, k, A, k, 0, C, ldc).
            kernels.gemmEx(Gemm.OP_T, Gemm.OP_N, n, m, k, 1f, bs, type, k, as, k, 0f, cs, ldc);
            float[] got = read(cs, m * ldc);
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < ldc; j++) {
                    if (j >= n) {
                        assertEquals(42f, got[i * ldc + j], "column " + j + " is outside the product");
                        continue;
                    }
                    float sum = 0f;
                    for (int l = 0; l < k; l++) sum += widen(a[i * k + l], type) * widen(b[j * k + l], type);
                    assertEquals(sum, got[i * ldc + j], 0f, "type " + type + " C[" + i + "][" + j + "]");
                }
            }
        }
    }

    @Test
    void gemmExRefusesMixedOrWideInputs() {
        MemorySegment x = floats(64);
        var e = org.junit.jupiter.api.Assertions.assertThrows(KernelLaunchException.class,
                () -> kernels.gemmEx(Gemm.OP_T, Gemm.OP_N, 2, 2, 2, 1f, x, 0, 2, x, 2, 0f, x, 2));
        assertTrue(e.getMessage().contains("CUDA_R_16F"), e.getMessage());
    }

    /** narrow16 and dequantize16 round each float to nearest even, as Java's Float.floatToFloat16 (F16) and a BF16 rounding. */
    @Test
    void narrowingKernelsRoundToNearestEven() {
        Random random = new Random(8);
        int rows = 3, k = 64;
        float[] x = new float[rows * k];
        for (int i = 0; i < x.length; i++) x[i] = (float) random.nextGaussian() * (i % 7 == 0 ? 1e-5f : 30f);
        for (int type : new int[] {F16, BF16}) {
            int bf16 = type == BF16 ? 1 : 0;
            MemorySegment out = device((long) x.length * 2);
            kernels.launch(Kernel.NARROW16, LaunchGeometry.narrow16(x.length), floats(x), out, x.length, bf16);
            // An F32 weight matrix of 4 rows: rows 1..2 decoded and narrowed.
            MemorySegment rowsOut = device(2L * k * 2);
            kernels.launch(Kernel.DEQUANTIZE16_F32, LaunchGeometry.dequantize16(TensorType.F32, k, 2), floats(Arrays.copyOf(x, 4 * k)), rowsOut, k, 1, bf16);
            for (int i = 0; i < x.length; i++) assertEquals(narrow(x[i], type), out.getAtIndex(ValueLayout.JAVA_SHORT, i), "type " + type + " element " + i);
            for (int i = 0; i < 2 * k; i++) assertEquals(narrow(x[k + i], type), rowsOut.getAtIndex(ValueLayout.JAVA_SHORT, i), "dequantize16 type " + type + " element " + i);
        }
    }

    private MemorySegment shorts(short[] values) {
        MemorySegment s = device((long) values.length * 2);
        MemorySegment.copy(values, 0, s, ValueLayout.JAVA_SHORT, 0, values.length);
        return s;
    }

    /** F16 by Java's own rounding; BF16: the top 16 bits, rounded to nearest even (no NaNs here). */
    static short narrow(float v, int type) {
        if (type == F16) return Float.floatToFloat16(v);
        int bits = Float.floatToRawIntBits(v);
        return (short) ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16);
    }

    static float widen(short h, int type) {
        return type == F16 ? Float.float16ToFloat(h) : Float.intBitsToFloat(h << 16);
    }
}
