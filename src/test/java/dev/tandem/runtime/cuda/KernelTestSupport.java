package dev.tandem.runtime.cuda;

import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.tandem.model.TensorType;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;

/**
 * Native buffers and the host-emulation library for kernel tests; skips when the library could not be built.
 * Tagged {@code kernel}: {@code mvn verify} runs every kernel test again under the kernel sanitizers (AddressSanitizer,
 * UBSan and the race check, see the pom's kernel-sanitizers execution), so a subclass holds kernel launches on
 * buffers only, nothing that loads a model.
 */
@Tag("kernel")
abstract class KernelTestSupport {
    protected HostKernels kernels;
    protected Arena arena;

    @BeforeEach
    void openKernels() {
        assumeTrue(HostKernels.isAvailable(), () -> "host-emulation kernels not built: " + HostKernels.unavailableReason());
        kernels = HostKernels.get();
        arena = Arena.ofConfined();
    }

    @AfterEach
    void closeArena() {
        if (arena != null) arena.close();
    }

    /**
     * {@code bytes} of "device memory": aligned to 16 bytes, the widest load a kernel makes, and no more, so the JVM
     * mallocs exactly {@code bytes} (a larger alignment pads the block) and AddressSanitizer's redzone starts right
     * at the buffer's end: a kernel reading or writing one element past it fails the kernel-sanitizers run.
     */
    protected MemorySegment device(long bytes) { return arena.allocate(bytes, 16); }

    protected MemorySegment floats(float[] values) {
        MemorySegment s = device((long) values.length * Float.BYTES);
        MemorySegment.copy(values, 0, s, ValueLayout.JAVA_FLOAT, 0, values.length);
        return s;
    }

    protected MemorySegment floats(int count) { return device((long) count * Float.BYTES); }

    protected MemorySegment ints(int[] values) {
        MemorySegment s = device((long) Math.max(1, values.length) * Integer.BYTES);
        MemorySegment.copy(values, 0, s, ValueLayout.JAVA_INT, 0, values.length);
        return s;
    }

    protected MemorySegment bytes(byte[] values) {
        MemorySegment s = device(values.length);
        MemorySegment.copy(values, 0, s, ValueLayout.JAVA_BYTE, 0, values.length);
        return s;
    }

    /** {@code rows} rows of {@code k} elements of {@code type}, given as the file stores them, in the device layout. */
    protected MemorySegment weights(TensorType type, byte[] stored, int rows, int k) {
        long storedRow = type.bytesFor(k), deviceRow = WeightLayout.rowBytes(type, k);
        MemorySegment in = MemorySegment.ofArray(stored), out = device(rows * deviceRow);
        for (int r = 0; r < rows; r++) WeightLayout.repackRow(type, in, r * storedRow, out, r * deviceRow, k);
        return out;
    }

    protected static float[] read(MemorySegment s, int count) {
        float[] out = new float[count];
        MemorySegment.copy(s, ValueLayout.JAVA_FLOAT, 0, out, 0, count);
        return out;
    }

    protected static int[] readInts(MemorySegment s, int count) {
        int[] out = new int[count];
        MemorySegment.copy(s, ValueLayout.JAVA_INT, 0, out, 0, count);
        return out;
    }

    protected static float[] randomFloats(Random random, int count, float scale) {
        float[] v = new float[count];
        for (int i = 0; i < count; i++) v[i] = (random.nextFloat() * 2 - 1) * scale;
        return v;
    }

    /** Fails unless |actual - expected| <= tolerance * magnitude at every index. */
    protected static void assertClose(String what, double[] expected, float[] actual, double[] magnitude, double tolerance) {
        for (int i = 0; i < expected.length; i++) {
            double err = Math.abs(actual[i] - expected[i]);
            if (!(err <= tolerance * magnitude[i])) {
                fail(what + " at " + i + ": expected " + expected[i] + ", got " + actual[i] + " (error " + err
                        + " > " + tolerance + " x " + magnitude[i] + ")");
            }
        }
    }
}
