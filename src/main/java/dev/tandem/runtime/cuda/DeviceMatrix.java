package dev.tandem.runtime.cuda;

import dev.tandem.model.TensorType;

/** A weight matrix on the device, in the {@link WeightLayout} of its type: {@code rows} rows of {@code columns} elements. */
record DeviceMatrix(String name, TensorType type, DeviceBuffer data, int columns, int rows) {
    /** Whether one grouped or gated matvec launch can read this matrix beside {@code other}. */
    boolean launchesWith(DeviceMatrix other) { return type == other.type && columns == other.columns; }
}
