package dev.tandem.runtime.cuda;

import java.lang.foreign.MemorySegment;

/**
 * Copies host data of any kind (mapped model files, Java arrays) to new device buffers through one pinned
 * staging buffer: asynchronous copies must read page-locked memory that stays put until the stream passes
 * them, which neither mapped files nor Java arrays guarantee.
 */
final class DeviceUpload implements AutoCloseable {
    private static final long STAGING_BYTES = 8L << 20;

    private final GpuDriver driver;
    private final GpuStream stream;
    private final PinnedBuffer staging;

    DeviceUpload(GpuDriver driver, GpuStream stream) {
        this.driver = driver;
        this.stream = stream;
        this.staging = driver.allocatePinned(STAGING_BYTES);
    }

    /** A new device buffer holding {@code src}'s bytes. */
    DeviceBuffer copy(MemorySegment src) {
        DeviceBuffer dst = driver.allocate(src.byteSize());
        for (long done = 0; done < src.byteSize(); ) {
            long n = Math.min(STAGING_BYTES, src.byteSize() - done);
            staging.segment().asSlice(0, n).copyFrom(src.asSlice(done, n));
            driver.copyToDevice(dst.slice(done, n), staging, 0, stream);
            driver.synchronize(stream);  // the staging buffer is reused for the next piece
            done += n;
        }
        return dst;
    }

    DeviceBuffer copy(float[] values) { return copy(MemorySegment.ofArray(values)); }

    @Override
    public void close() { staging.close(); }
}
