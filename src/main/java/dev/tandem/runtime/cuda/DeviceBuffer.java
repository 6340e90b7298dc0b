package dev.tandem.runtime.cuda;

/**
 * A range of device memory. Made by {@link GpuDriver#allocate}; {@link #close()} frees an allocation, while a
 * {@link #slice} is a view that owns nothing (closing it does nothing). Pass buffers as kernel pointer arguments.
 */
public interface DeviceBuffer extends AutoCloseable {
    long byteSize();

    /** The bytes {@code [offset, offset + bytes)} of this buffer. */
    DeviceBuffer slice(long offset, long bytes);

    /** Floats {@code [first, first + count)}, for buffers of floats. */
    default DeviceBuffer floats(long first, long count) { return slice(first * Float.BYTES, count * Float.BYTES); }

    /** Ints {@code [first, first + count)}, for buffers of ints. */
    default DeviceBuffer ints(long first, long count) { return slice(first * Integer.BYTES, count * Integer.BYTES); }

    @Override
    void close();
}
