package dev.tandem.engine;

/** Why a generation ended. */
public enum FinishReason {
    /** An end-of-generation token or a stop string. */
    STOP,
    /** {@code maxTokens} reached, or the context is full. */
    LENGTH,
    /** Cancelled by the caller (or the client went away). */
    CANCELLED,
    /** The request's deadline passed. */
    DEADLINE,
    /**
     * The engine was shutting down ({@link Engine#drain}, {@link Engine#close}, a server's SIGTERM) and its drain
     * timeout passed before the generation ended: "shutdown" in the API, where OpenAI's clients read an unknown
     * finish reason as such rather than failing. Retrying elsewhere is safe.
     */
    SHUTDOWN;

    /** The lower-case name used in JSON ("stop", "length", ...). */
    public String apiName() { return name().toLowerCase(java.util.Locale.ROOT); }
}
