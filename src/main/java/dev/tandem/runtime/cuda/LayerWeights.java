package dev.tandem.runtime.cuda;

/** One transformer layer's weights on the device; the Q/K/V biases are null for models without them. */
record LayerWeights(DeviceBuffer attnNorm, DeviceMatrix wq, DeviceMatrix wk, DeviceMatrix wv, DeviceMatrix wo,
                    DeviceBuffer bq, DeviceBuffer bk, DeviceBuffer bv,
                    DeviceBuffer ffnNorm, DeviceMatrix gate, DeviceMatrix up, DeviceMatrix down) {
    /** The matrices a pass multiplies by, in pass order. */
    DeviceMatrix[] matrices() { return new DeviceMatrix[] {wq, wk, wv, wo, gate, up, down}; }
}
