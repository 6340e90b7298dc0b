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

    /**
     * Why CUDA cannot be used here, in one line; {@code null} when a device and a new enough driver are present
     * and the device can run the fatbin (see {@link DeviceRequirements}).
     */
    static String unavailableReason() {
        int[] required = requiredCudaVersion();
        if (required == null) return "this build has no CUDA kernels (" + FATBIN + " missing: nvcc was not found when it was built)";
        Arena arena = Arena.ofAuto();
        SymbolLookup cuda;
        try {
            SymbolLookup emulated = EmulatedCuda.load();
            cuda = emulated != null ? emulated : SymbolLookup.libraryLookup("libcuda.so.1", arena);
        } catch (IllegalArgumentException | IllegalCallerException e) {
            return "libcuda.so.1 not found (no NVIDIA driver installed)";
        } catch (IllegalStateException e) {
            return e.getMessage();
        }
        try {
            MemorySegment out = arena.allocate(ValueLayout.JAVA_LONG);
            int status = (int) handle(cuda, "cuDriverGetVersion", ValueLayout.ADDRESS).invokeExact(out);
            if (status != CUDA_SUCCESS) return "the NVIDIA driver does not report its version (CUresult " + status + ")";
            int driver = out.get(ValueLayout.JAVA_INT, 0);
            String tooOld = DeviceRequirements.driverTooOld(driver, required);
            if (tooOld != null) return tooOld;
            status = (int) handle(cuda, "cuInit", ValueLayout.JAVA_INT).invokeExact(0);
            if (status == 100) return "no CUDA device found (cuInit: CUDA_ERROR_NO_DEVICE)";
            if (status != CUDA_SUCCESS) return "the NVIDIA driver failed to start (cuInit: CUresult " + status + ")";
            status = (int) handle(cuda, "cuDeviceGetCount", ValueLayout.ADDRESS).invokeExact(out);
            if (status != CUDA_SUCCESS || out.get(ValueLayout.JAVA_INT, 0) < 1) return "no CUDA device found";
            DeviceFacts device = device0(cuda, arena, driver);
            return device == null ? null : DeviceRequirements.unsupportedGpu(device);
        } catch (Throwable t) {
            return "libcuda.so.1 cannot be used: " + t;
        }
    }

    private static final int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;

    /** Device 0's name, compute capability and memory (free memory needs a context: -1), or null where the driver will not say. */
    private static DeviceFacts device0(SymbolLookup cuda, Arena arena, int driver) throws Throwable {
        MemorySegment device = arena.allocate(ValueLayout.JAVA_INT), value = arena.allocate(ValueLayout.JAVA_LONG);
        MemorySegment name = arena.allocate(256);
        if ((int) handle(cuda, "cuDeviceGet", ValueLayout.ADDRESS, ValueLayout.JAVA_INT).invokeExact(device, 0) != CUDA_SUCCESS) return null;
        int dev = device.get(ValueLayout.JAVA_INT, 0);
        MethodHandle attribute = handle(cuda, "cuDeviceGetAttribute", ValueLayout.ADDRESS, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT);
        if ((int) attribute.invokeExact(value, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev) != CUDA_SUCCESS) return null;
        int major = value.get(ValueLayout.JAVA_INT, 0);
        if ((int) attribute.invokeExact(value, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev) != CUDA_SUCCESS) return null;
        int minor = value.get(ValueLayout.JAVA_INT, 0);
        int named = (int) handle(cuda, "cuDeviceGetName", ValueLayout.ADDRESS, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT).invokeExact(name, 256, dev);
        String deviceName = named == CUDA_SUCCESS ? name.getString(0, StandardCharsets.US_ASCII) : "device 0";
        long total = (int) handle(cuda, "cuDeviceTotalMem_v2", ValueLayout.ADDRESS, ValueLayout.JAVA_INT).invokeExact(value, dev) == CUDA_SUCCESS
                ? value.get(ValueLayout.JAVA_LONG, 0) : -1;
        return new DeviceFacts(deviceName, major, minor, -1, total, driver);
    }

    /** A downcall to {@code name} returning a CUresult. */
    private static MethodHandle handle(SymbolLookup cuda, String name, ValueLayout... args) {
        return Linker.nativeLinker().downcallHandle(cuda.find(name).orElseThrow(), FunctionDescriptor.of(ValueLayout.JAVA_INT, args));
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
