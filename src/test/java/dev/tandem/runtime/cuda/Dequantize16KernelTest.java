package dev.tandem.runtime.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.tandem.model.TensorType;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * dequantize16, the prefill GEMM's weight operand, for every weight type: rows {@code first..} of a matrix in the
 * device layout come out as the CPU backend's dequantisation of the stored rows ({@link TensorType#dequantize})
 * rounded to nearest even to F16 or BF16, bit for bit. The host emulation computes each value with the CPU's float
 * operations (no FMA contraction on the host), so there is nothing to tolerate.
 */
class Dequantize16KernelTest extends KernelTestSupport {
    static final int K = 512, ROWS = 6, FIRST = 2, COUNT = 3;

    @ParameterizedTest
    @EnumSource(value = TensorType.class, names = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q5_K", "Q6_K"})
    void rowsAreTheCpuDequantisationRoundedToNearestEven(TensorType type) {
        byte[] w = ReferenceWeights.random(type, ROWS, K, new Random(21 + type.ordinal()));
        float[] cpu = new float[COUNT * K];
        type.dequantize(MemorySegment.ofArray(w), FIRST * type.bytesFor(K), cpu, 0, cpu.length);
        MemorySegment device = weights(type, w, ROWS, K);
        for (int precision : new int[] {CudaGemmPrefillTest.F16, CudaGemmPrefillTest.BF16}) {
            MemorySegment out = device(2L * cpu.length);
            int bf16 = precision == CudaGemmPrefillTest.BF16 ? 1 : 0;
            kernels.launch(Kernel.dequantize16(type), LaunchGeometry.dequantize16(type, K, COUNT), device, out, K, FIRST, bf16);
            for (int i = 0; i < cpu.length; i++) {
                assertEquals(CudaGemmPrefillTest.narrow(cpu[i], precision), out.getAtIndex(ValueLayout.JAVA_SHORT, i),
                        type + (bf16 == 1 ? " to BF16" : " to F16") + ": row " + (FIRST + i / K) + ", element " + i % K + " (" + cpu[i] + ")");
            }
        }
    }
}
