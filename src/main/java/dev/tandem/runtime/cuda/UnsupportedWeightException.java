package dev.tandem.runtime.cuda;

/** A model has a weight the CUDA backend cannot run: the message names the tensor, its type and why. */
public class UnsupportedWeightException extends RuntimeException {
    public UnsupportedWeightException(String message) { super(message); }
}
