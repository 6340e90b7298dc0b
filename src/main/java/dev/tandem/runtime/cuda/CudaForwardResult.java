package dev.tandem.runtime.cuda;

import dev.tandem.runtime.ForwardResult;

/** A CUDA pass's result: the argmax ids were computed on the device and came back with the pass. */
public interface CudaForwardResult extends ForwardResult {
    /** Every result row's argmax id (ties to the lower id), in one copy; no logits are transferred. */
    int[] argmaxIds();
}
