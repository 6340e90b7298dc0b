package dev.tandem.runtime;

/** The K/V cache has no free block for a sequence that needs one. Nothing was overwritten. */
public class KvCacheExhaustedException extends RuntimeException {
    public KvCacheExhaustedException(String message) {
        super(message);
    }
}
