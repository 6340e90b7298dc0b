package dev.tandem.model.quant;

import java.lang.foreign.MemorySegment;

/**
 * The arithmetic of one element format: turning whole blocks into floats and back. Counts are element
 * counts and always a whole number of blocks (the caller, {@code TensorType}, checks that).
 */
public interface WeightFormat {
    void dequantize(MemorySegment src, long byteOffset, float[] dst, int dstOffset, int count);

    void quantize(float[] src, int srcOffset, int count, MemorySegment dst, long byteOffset);
}
