package dev.tandem.runtime.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;

/**
 * A child JVM's whole work for {@link PlantedBugsTest}: {@code <library> adjacent|adjacent-off-by-one} launches the
 * planted adjacent-sums kernel over buffers of exactly n floats (4-byte alignment, so the JVM mallocs exactly that and
 * AddressSanitizer's redzone starts right after the last element), prints the status and exits with it.
 */
final class PlantedKernelLaunch {
    private PlantedKernelLaunch() {}

    public static void main(String[] args) {
        PlantedKernels kernels = new PlantedKernels(Path.of(args[0]));
        boolean offByOne = args[1].equals("adjacent-off-by-one");
        int n = 1000;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment in = arena.allocate(n * 4L, 4), out = arena.allocate(n * 4L, 4);
            for (int i = 0; i < n; i++) in.setAtIndex(ValueLayout.JAVA_FLOAT, i, i);
            int status = kernels.adjacentSums(offByOne, in, out, n);
            System.out.println("planted kernel status " + status + ", out[" + (n - 2) + "] = " + out.getAtIndex(ValueLayout.JAVA_FLOAT, n - 2));
            System.exit(status);
        }
    }
}
