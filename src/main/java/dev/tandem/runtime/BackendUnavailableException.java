package dev.tandem.runtime;

/** A backend was asked for by name but cannot run here; the message says what is missing. */
public class BackendUnavailableException extends RuntimeException {
    public BackendUnavailableException(String message) { super(message); }

    public BackendUnavailableException(String message, Throwable cause) { super(message, cause); }
}
