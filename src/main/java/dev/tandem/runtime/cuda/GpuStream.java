package dev.tandem.runtime.cuda;

/** An ordered queue of device work: copies and launches on one stream run in the order they were enqueued. */
public interface GpuStream extends AutoCloseable {
    @Override
    void close();
}
