package dev.tandem.engine;

/**
 * The engine can no longer generate: an error left it unusable (see {@link Engine#failure()}). Requests are
 * refused with this rather than queued where nothing would run them; the process should be restarted.
 */
public final class EngineFailedException extends RuntimeException {
    public EngineFailedException(String message) { super(message); }
}
