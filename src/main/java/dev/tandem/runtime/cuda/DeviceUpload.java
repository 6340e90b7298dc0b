package dev.tandem.runtime.cuda;

import dev.tandem.model.TensorType;

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

    /**
     * A new device buffer holding a weight matrix of {@code rows} rows of {@code k} elements, stored in {@code src}
     * as the file has it, in the device layout ({@link WeightLayout}): rows are repacked straight into the staging
     * buffer, a whole number of rows at a time.
     */
    DeviceBuffer matrix(TensorType type, MemorySegment src, int rows, int k) {
        if (!WeightLayout.repacked(type)) return copy(src.asSlice(0, type.bytesFor((long) rows * k)));
        long srcRow = type.bytesFor(k), dstRow = WeightLayout.rowBytes(type, k);
        long perPiece = STAGING_BYTES / dstRow;
        if (perPiece == 0) throw new IllegalArgumentException("a " + type + " row of " + k + " elements does not fit the upload's staging buffer");
        DeviceBuffer dst = driver.allocate(rows * dstRow);
        for (long row = 0; row < rows; ) {
            long n = Math.min(perPiece, rows - row);
            for (long i = 0; i < n; i++) {
                WeightLayout.repackRow(type, src, (row + i) * srcRow, staging.segment(), i * dstRow, k);
            }
            driver.copyToDevice(dst.slice(row * dstRow, n * dstRow), staging, 0, stream);
            driver.synchronize(stream);
            row += n;
        }
        return dst;
    }

    @Override
    public void close() { staging.close(); }
}
