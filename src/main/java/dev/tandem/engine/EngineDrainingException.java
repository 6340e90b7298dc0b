package dev.tandem.engine;

/**
 * The engine is shutting down ({@link Engine#drain}) and takes no new requests; those it had already taken still
 * finish. Retry on another replica, or on this one after its restart.
 */
public final class EngineDrainingException extends RuntimeException {
    public EngineDrainingException() {
        super("the server is shutting down and takes no new requests; retry on another replica or after its restart");
    }
}
