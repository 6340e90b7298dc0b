package dev.tandem.runtime.cuda;

/** A kernel launch failed: the message names the kernel, its launch dimensions and what went wrong. */
public class KernelLaunchException extends RuntimeException {
    public KernelLaunchException(String message) { super(message); }

    public KernelLaunchException(String message, Throwable cause) { super(message, cause); }
}
