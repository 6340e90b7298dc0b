package dev.tandem.runtime.cuda;

import java.util.Locale;

/**
 * Whether a device can run Tandem's kernels, decided from {@link DeviceFacts} alone (pure functions, so that every
 * answer is tested without a GPU). Each returns the one-line reason it cannot, or {@code null}.
 */
public final class DeviceRequirements {
    /** The fatbin's oldest machine code is sm_80: cubins run on their major version's later minors only. */
    public static final int MIN_MAJOR = 8, MIN_MINOR = 0;

    private DeviceRequirements() {}

    /** A GPU older than compute capability 8.0 has no machine code in the fatbin (and compute_90 PTX needs 9.0). */
    public static String unsupportedGpu(DeviceFacts f) {
        if (f.major() > MIN_MAJOR || f.major() == MIN_MAJOR && f.minor() >= MIN_MINOR) return null;
        return "the GPU '" + f.name() + "' has compute capability " + f.major() + "." + f.minor() + "; Tandem's kernels need "
                + MIN_MAJOR + "." + MIN_MINOR + " or newer (Ampere, e.g. A100 or RTX 30xx, and later)";
    }

    /**
     * A driver older than the CUDA release that built the cubins cannot load them: {@code driverVersion} as
     * cuDriverGetVersion gives it (12040 for 12.4), {@code built} the nvcc release (major, minor).
     */
    public static String driverTooOld(int driverVersion, int[] built) {
        if (driverVersion / 1000 >= built[0]) return null;
        return "the NVIDIA driver supports CUDA " + driverVersion / 1000 + "." + driverVersion % 1000 / 10 + ", but the kernels were built with CUDA "
                + built[0] + "." + built[1] + " and need a driver for CUDA " + built[0] + ".0 or newer";
    }

    /** {@code what} (e.g. "model 'kjv-main'") needs {@code plan.total()} bytes; null when they are free (or free memory is unknown). */
    public static String tooLittleMemory(DeviceFacts f, String what, DeviceMemoryPlan plan) {
        if (f == null || f.freeBytes() < 0 || plan.total() <= f.freeBytes()) return null;
        return what + " needs " + size(plan.total()) + " of device memory (" + plan.describe() + ") but the GPU '" + f.name()
                + "' has " + size(f.freeBytes()) + " free of " + size(f.totalBytes());
    }

    /** {@code bytes} for people: "1.25 GiB", "12.0 MiB", "3.5 KiB", "100 B". */
    public static String size(long bytes) {
        if (bytes >= 1L << 30) return String.format(Locale.ROOT, "%.2f GiB", bytes / (double) (1L << 30));
        if (bytes >= 1L << 20) return String.format(Locale.ROOT, "%.1f MiB", bytes / (double) (1L << 20));
        if (bytes >= 1L << 10) return String.format(Locale.ROOT, "%.1f KiB", bytes / (double) (1L << 10));
        return bytes + " B";
    }
}
