package dev.tandem.runtime.cuda;

import java.lang.foreign.MemorySegment;

/**
 * Page-locked host memory: the source or target of asynchronous copies, which read or write it while the
 * stream runs, so it must not be touched between enqueueing a copy and the stream passing it.
 */
public interface PinnedBuffer extends AutoCloseable {
    /** The memory, as a native segment the host reads and writes directly. */
    MemorySegment segment();

    @Override
    void close();
}
