package dev.tandem.runtime.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;

/**
 * The test-only kernels of {@code src/test/native/planted_kernels.cu}, each with a planted bug and a correct twin, in
 * the library {@code native-build/build-sanitizers.sh} builds (with its own copy of the host emulation).
 */
final class PlantedKernels {
    /** The system property naming the library; the pom's kernel-sanitizers execution sets it. */
    static final String PROPERTY = "tandem.plantedKernels";
    static final int MIRROR_THREADS = 128;

    private final MethodHandle adjacentSums, adjacentSumsOffByOne, mirroredSums, mirroredSumsNoBarrier, lastError;
    private final RaceCheck.OrderSwitch orderSwitch;

    PlantedKernels(Path library) {
        Linker linker = Linker.nativeLinker();
        SymbolLookup lookup = SymbolLookup.libraryLookup(library, Arena.global());
        ValueLayout i = ValueLayout.JAVA_INT, p = ValueLayout.ADDRESS;
        FunctionDescriptor pairs = FunctionDescriptor.of(i, i, i, i, i, i, i, i, p, p, i);
        FunctionDescriptor mirror = FunctionDescriptor.of(i, i, i, i, i, i, i, i, p, p);
        adjacentSums = linker.downcallHandle(lookup.findOrThrow("tandem_planted_adjacent_sums"), pairs);
        adjacentSumsOffByOne = linker.downcallHandle(lookup.findOrThrow("tandem_planted_adjacent_sums_off_by_one"), pairs);
        mirroredSums = linker.downcallHandle(lookup.findOrThrow("tandem_planted_mirrored_sums"), mirror);
        mirroredSumsNoBarrier = linker.downcallHandle(lookup.findOrThrow("tandem_planted_mirrored_sums_no_barrier"), mirror);
        lastError = linker.downcallHandle(lookup.findOrThrow("tandem_host_last_error"),
                FunctionDescriptor.of(ValueLayout.ADDRESS.withTargetLayout(MemoryLayout.sequenceLayout(4096, ValueLayout.JAVA_BYTE))));
        orderSwitch = HostKernels.orderSwitch(linker, lookup, library, lastError);
    }

    /** out[i] = in[i] + in[i + 1] for i < n - 1; with {@code offByOne} also for i = n - 1, reading in[n]. Returns the status. */
    int adjacentSums(boolean offByOne, MemorySegment in, MemorySegment out, int n) {
        int threads = 128, blocks = (n + threads - 1) / threads;
        try {
            return offByOne ? (int) adjacentSumsOffByOne.invokeExact(blocks, 1, 1, threads, 1, 1, 0, in, out, n)
                    : (int) adjacentSums.invokeExact(blocks, 1, 1, threads, 1, 1, 0, in, out, n);
        } catch (Throwable t) {
            throw new AssertionError("planted_adjacent_sums: native call failed", t);
        }
    }

    /** One block: out[t] = in[t] + in[127 - t] through shared memory, with or without the barrier between. Returns the status. */
    int mirroredSums(boolean barrier, MemorySegment in, MemorySegment out) {
        try {
            return barrier ? (int) mirroredSums.invokeExact(1, 1, 1, MIRROR_THREADS, 1, 1, 0, in, out)
                    : (int) mirroredSumsNoBarrier.invokeExact(1, 1, 1, MIRROR_THREADS, 1, 1, 0, in, out);
        } catch (Throwable t) {
            throw new AssertionError("planted_mirrored_sums: native call failed", t);
        }
    }

    RaceCheck.OrderSwitch orderSwitch() { return orderSwitch; }
}
