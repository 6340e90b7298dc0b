package dev.tandem.runtime.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.SymbolLookup;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The emulated CUDA driver ({@code native-build/emulated-driver/}: {@code libcuda.so.1} and {@code libcublas.so.12}
 * over the host emulation), used only where the system property {@code tandem.emulatedCuda} names its folder: the
 * test JVMs the pom starts and {@code gpu-check.sh --rehearse}. Nothing else ever finds it, so it cannot shadow a
 * real driver.
 *
 * <p>Why loading it first is enough: JCuda's natives name {@code libcuda.so.1} (and JCublas2's
 * {@code libcublas.so.12}) as needed libraries, and the dynamic loader satisfies a needed name with an already
 * loaded library of that soname before it searches any path. So once these two are loaded here, JCuda binds to
 * them, and {@link CudaProbe}'s lookup of {@code libcuda.so.1} finds the same one.
 */
final class EmulatedCuda {
    static final String PROPERTY = "tandem.emulatedCuda";
    private static final Object LOCK = new Object();
    private static SymbolLookup driver;

    private EmulatedCuda() {}

    /** The folder of the emulated libraries, or null when none was asked for. */
    static Path directory() {
        String dir = System.getProperty(PROPERTY);
        return dir == null || dir.isBlank() ? null : Path.of(dir);
    }

    /**
     * Loads the emulated driver when asked for and returns its symbols; null when not asked for. Throws
     * {@link IllegalStateException} naming the folder when it was asked for but cannot be loaded.
     */
    static SymbolLookup load() {
        Path dir = directory();
        if (dir == null) return null;
        synchronized (LOCK) {
            if (driver != null) return driver;
            Path cuda = dir.resolve("libcuda.so.1"), cublas = dir.resolve("libcublas.so.12");
            if (!Files.isRegularFile(cuda) || !Files.isRegularFile(cublas)) {
                throw new IllegalStateException(PROPERTY + "=" + dir + " has no libcuda.so.1 and libcublas.so.12 (run native-build/build-emulated-driver.sh)");
            }
            driver = SymbolLookup.libraryLookup(cuda, Arena.global());
            SymbolLookup.libraryLookup(cublas, Arena.global());
            return driver;
        }
    }
}
