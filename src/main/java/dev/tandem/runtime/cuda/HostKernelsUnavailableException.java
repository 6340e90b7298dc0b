package dev.tandem.runtime.cuda;

/** The host-emulation kernel library is missing or cannot be loaded; the message says where it was looked for. */
public class HostKernelsUnavailableException extends RuntimeException {
    public HostKernelsUnavailableException(String message) { super(message); }

    public HostKernelsUnavailableException(String message, Throwable cause) { super(message, cause); }
}
