package dev.tandem.runtime.cuda;

/**
 * What a CUDA device reports about itself: what {@link DeviceRequirements} decides from.
 *
 * @param name          the device's name ("NVIDIA H200")
 * @param major         compute capability, major
 * @param minor         compute capability, minor
 * @param freeBytes     device memory free now (cuMemGetInfo), or -1 where not asked (no context yet)
 * @param totalBytes    device memory in all
 * @param driverVersion the driver's CUDA version as cuDriverGetVersion gives it (13000 for 13.0)
 */
public record DeviceFacts(String name, int major, int minor, long freeBytes, long totalBytes, int driverVersion) {
    /** The same facts with {@code bytes} free. */
    public DeviceFacts withFree(long bytes) { return new DeviceFacts(name, major, minor, bytes, totalBytes, driverVersion); }
}
