package dev.tandem.runtime.cuda;

/**
 * A kernel's results depend on the order in which its threads or blocks run (see {@link RaceCheck}): a missing
 * {@code __syncthreads()}, a warp-synchronous assumption, or a block reading another block's results.
 */
public final class KernelRaceException extends KernelLaunchException {
    public KernelRaceException(String message) { super(message); }
}
