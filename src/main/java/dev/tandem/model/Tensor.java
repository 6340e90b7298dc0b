package dev.tandem.model;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * A named weight tensor as stored in a model file, viewed in place (no copy).
 *
 * <p>Layout (stated once, used everywhere): {@code shape} is in ggml order, innermost dimension first. For a
 * matrix, {@code shape[0]} is the row length ({@link #columns()}), and the rows are stored one after another,
 * each {@code type.bytesFor(columns())} bytes. A weight matrix of a linear layer {@code y = W x} has one row per
 * output element, so {@code rows()} is the output size and {@code columns()} the input size.
 */
public record Tensor(String name, TensorType type, long[] shape, MemorySegment data) {

    public Tensor {
        shape = shape.clone();
    }

    public long[] shape() { return shape.clone(); }

    public int dimensions() { return shape.length; }

    public long elements() {
        long n = 1;
        for (long d : shape) n *= d;
        return n;
    }

    /** Length of one row (the innermost dimension). */
    public int columns() { return Math.toIntExact(shape[0]); }

    /** Number of rows: the product of all dimensions but the innermost. */
    public int rows() { return Math.toIntExact(elements() / shape[0]); }

    /** Bytes of one row. */
    public long rowBytes() { return type.bytesFor(shape[0]); }

    public long byteSize() { return type.bytesFor(elements()); }

    /** A view of row {@code r}. */
    public MemorySegment row(int r) { return data.asSlice(r * rowBytes(), rowBytes()); }

    @Override
    public String toString() {
        return name + " " + type + " " + Arrays.toString(shape);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Tensor t && t.name.equals(name) && t.type == type && Arrays.equals(t.shape, shape) && t.data.equals(data);
    }

    @Override
    public int hashCode() { return name.hashCode() * 31 + Arrays.hashCode(shape); }
}
