package dev.tandem.runtime.cuda;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;

/**
 * Whether a CUDA device can run Tandem's kernels here, asked without touching JCuda: JCuda's natives link
 * against {@code libcuda.so.1} and throw {@link UnsatisfiedLinkError} where it is missing, so the driver
 * library is opened through FFM first and asked for its version and devices.
 */
final class CudaProbe {
    static final String FATBIN = "/native/tandem_kernels.fatbin";
    private static final int CUDA_SUCCESS = 0;

    private CudaProbe() {}

    /** Why CUDA cannot be used here, in one line; {@code null} when a device and a new enough driver are present. */
    static String unavailableReason() {
        int[] required = requiredCudaVersion();
        if (required == null) return "this build has no CUDA kernels (" + FATBIN + " missing: nvcc was not found when it was built)";
        Arena arena = Arena.ofAuto();
        SymbolLookup cuda;
        try {
            cuda = SymbolLookup.libraryLookup("libcuda.so.1", arena);
        } catch (IllegalArgumentException | IllegalCallerException e) {
            return "libcuda.so.1 not found (no NVIDIA driver installed)";
        }
        try {
            Linker linker = Linker.nativeLinker();
            MethodHandle init = linker.downcallHandle(cuda.find("cuInit").orElseThrow(),
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
            MethodHandle version = linker.downcallHandle(cuda.find("cuDriverGetVersion").orElseThrow(),
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS));
            MethodHandle count = linker.downcallHandle(cuda.find("cuDeviceGetCount").orElseThrow(),
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS));
            MemorySegment out = arena.allocate(ValueLayout.JAVA_INT);
            int status = (int) version.invokeExact(out);
            if (status != CUDA_SUCCESS) return "the NVIDIA driver does not report its version (CUresult " + status + ")";
            int driver = out.get(ValueLayout.JAVA_INT, 0);
            if (driver / 1000 < required[0]) {
                return "the NVIDIA driver supports CUDA " + driver / 1000 + "." + driver % 1000 / 10 + ", but the kernels were built with CUDA "
                        + required[0] + "." + required[1] + " and need a driver for CUDA " + required[0] + ".0 or newer";
            }
            status = (int) init.invokeExact(0);
            if (status == 100) return "no CUDA device found (cuInit: CUDA_ERROR_NO_DEVICE)";
            if (status != CUDA_SUCCESS) return "the NVIDIA driver failed to start (cuInit: CUresult " + status + ")";
            status = (int) count.invokeExact(out);
            if (status != CUDA_SUCCESS || out.get(ValueLayout.JAVA_INT, 0) < 1) return "no CUDA device found";
            return null;
        } catch (Throwable t) {
            return "libcuda.so.1 cannot be used: " + t;
        }
    }

    /** The CUDA release (major, minor) that built the fatbin, from the note build-fatbin.sh leaves beside it. */
    static int[] requiredCudaVersion() {
        if (CudaProbe.class.getResource(FATBIN) == null) return null;
        try (InputStream in = CudaProbe.class.getResourceAsStream(FATBIN + ".cuda")) {
            if (in == null) return new int[] {12, 0};
            String[] v = new String(in.readAllBytes(), StandardCharsets.US_ASCII).trim().split("\\.");
            return new int[] {Integer.parseInt(v[0]), v.length > 1 ? Integer.parseInt(v[1]) : 0};
        } catch (IOException | NumberFormatException e) {
            return new int[] {12, 0};
        }
    }
}
