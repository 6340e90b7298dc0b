package dev.tandem.runtime.cuda;

/**
 * Work already enqueued on the device failed (an illegal or misaligned address, a trap, a failed launch): the CUDA
 * context is lost, and everything later on it fails too. The message is one line naming the CUDA error and where
 * it surfaced, e.g. "CUDA error CUDA_ERROR_ILLEGAL_ADDRESS in a decode pass (the GPU context is lost; restart the
 * process)".
 */
public class DeviceFaultException extends RuntimeException {
    private final String error;

    public DeviceFaultException(String error, String where) {
        super("CUDA error " + error + " in " + where + " (the GPU context is lost; restart the process)");
        this.error = error;
    }

    /** The CUresult's name, e.g. CUDA_ERROR_ILLEGAL_ADDRESS. */
    public String error() { return error; }
}
