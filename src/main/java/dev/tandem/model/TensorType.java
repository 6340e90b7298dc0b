package dev.tandem.model;

import dev.tandem.model.quant.WeightFormats;

import java.lang.foreign.MemorySegment;

/**
 * The element formats a weight tensor can have, with their ggml ids and block geometry.
 *
 * <p>This enum is the one place that knows a format's block size and byte size. Quantised formats store
 * {@link #blockSize()} consecutive elements of a row in {@link #blockBytes()} bytes; a row's length must be a
 * multiple of the block size. The arithmetic on blocks (dequantise, quantise, dot) lives in
 * {@code dev.tandem.model.quant}, one class per format family.
 */
public enum TensorType {
    F32(0, 1, 4),
    F16(1, 1, 2),
    Q4_0(2, 32, 18),
    Q8_0(8, 32, 34),
    Q4_K(12, 256, 144),
    Q5_K(13, 256, 176),
    Q6_K(14, 256, 210),
    BF16(30, 1, 2);

    private final int ggmlId;
    private final int blockSize;
    private final int blockBytes;

    TensorType(int ggmlId, int blockSize, int blockBytes) {
        this.ggmlId = ggmlId;
        this.blockSize = blockSize;
        this.blockBytes = blockBytes;
    }

    /** The type id used in GGUF tensor infos (ggml_type). */
    public int ggmlId() { return ggmlId; }

    /** Elements per block (1 for the float types). */
    public int blockSize() { return blockSize; }

    /** Bytes per block. */
    public int blockBytes() { return blockBytes; }

    public boolean isQuantized() { return blockSize > 1; }

    /** Bytes occupied by {@code elements} elements; {@code elements} must be a whole number of blocks. */
    public long bytesFor(long elements) {
        if (elements % blockSize != 0) {
            throw new IllegalArgumentException(elements + " elements is not a whole number of " + this + " blocks of " + blockSize);
        }
        return elements / blockSize * blockBytes;
    }

    /** Dequantises {@code count} elements (a whole number of blocks) starting at byteOffset into dst[dstOffset..]. */
    public void dequantize(MemorySegment src, long byteOffset, float[] dst, int dstOffset, int count) {
        bytesFor(count);
        WeightFormats.of(this).dequantize(src, byteOffset, dst, dstOffset, count);
    }

    /**
     * Quantises {@code count} elements (whole blocks) of src into this format at dst/byteOffset, with the
     * rounding of ggml's reference quantisers (K-quants: a plain min/max scale fit, see
     * {@code dev.tandem.model.quant.KQuantizer}).
     */
    public void quantize(float[] src, int srcOffset, int count, MemorySegment dst, long byteOffset) {
        bytesFor(count);
        WeightFormats.of(this).quantize(src, srcOffset, count, dst, byteOffset);
    }

    /** The test oracle: dequantise, then a plain sequential dot product with x[xOffset..] in double. */
    public double dotReference(MemorySegment w, long byteOffset, float[] x, int xOffset, int count) {
        float[] values = new float[count];
        dequantize(w, byteOffset, values, 0, count);
        double sum = 0;
        for (int i = 0; i < count; i++) sum += (double) values[i] * x[xOffset + i];
        return sum;
    }

    /** The type for a ggml id, or {@code null} when Tandem does not support it. */
    public static TensorType fromGgmlId(int id) {
        for (TensorType t : values()) {
            if (t.ggmlId == id) return t;
        }
        return null;
    }

    /** Parses a user-facing name such as {@code q8_0} or {@code Q4_K}. */
    public static TensorType parse(String name) {
        for (TensorType t : values()) {
            if (t.name().equalsIgnoreCase(name.trim())) return t;
        }
        throw new IllegalArgumentException("unknown tensor type '" + name + "' (known: f32, f16, bf16, q8_0, q4_0, q4_k, q5_k, q6_k)");
    }
}
