package dev.tandem.runtime.cuda;

/** A point in a stream's work ({@link GpuDriver#record}): other streams can wait for it, the host can query it. */
public interface GpuEvent extends AutoCloseable {
    @Override
    void close();
}
