package dev.tandem.runtime;

/**
 * One model's K/V storage over a {@link PagedKvCache}'s shared block tables. Made by
 * {@link LoadedModel#createKvCache}; passed back to the same model's forward passes.
 */
public interface KvCache extends AutoCloseable {
    /** The shared block allocator and block tables. */
    PagedKvCache tables();

    /** Bytes of storage held. */
    long bytes();

    @Override
    void close();
}
