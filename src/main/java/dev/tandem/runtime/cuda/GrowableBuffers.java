package dev.tandem.runtime.cuda;

import java.util.function.LongFunction;

/**
 * A group of pass buffers sized by one number (rows, ints, bytes), replaced by a larger group when a pass needs
 * more. Replace only between passes, while the stream is idle: {@code beforeReplacing} runs first, for the CUDA
 * graphs that captured the old addresses.
 */
final class GrowableBuffers<B extends AutoCloseable> implements AutoCloseable {
    private final LongFunction<B> allocate;
    private final long least;
    private final Runnable beforeReplacing;
    private B buffers;
    private long capacity;

    /** {@code allocate} makes a group for a capacity, at least {@code least} (sizes that many passes need at once). */
    GrowableBuffers(long least, Runnable beforeReplacing, LongFunction<B> allocate) {
        this.least = least;
        this.beforeReplacing = beforeReplacing;
        this.allocate = allocate;
    }

    /** The group, replaced first by one of capacity max({@code needed}, least) when it holds less than {@code needed}. */
    B atLeast(long needed) {
        if (buffers != null && capacity >= needed) return buffers;
        if (buffers != null) {
            beforeReplacing.run();
            closeBuffers();
        }
        long size = Math.max(needed, least);
        buffers = allocate.apply(size);
        capacity = size;
        return buffers;
    }

    /** The group the last {@link #atLeast} returned. */
    B current() { return buffers; }

    @Override
    public void close() {
        if (buffers != null) closeBuffers();
    }

    private void closeBuffers() {
        B old = buffers;
        buffers = null;
        try {
            old.close();
        } catch (RuntimeException e) {
            throw e;
        } catch (Exception e) {
            throw new IllegalStateException(e);  // device and pinned buffers throw no checked exceptions
        }
    }
}
