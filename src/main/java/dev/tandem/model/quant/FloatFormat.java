package dev.tandem.model.quant;

import java.lang.foreign.MemorySegment;

/** The unblocked float formats: f32, IEEE half, and bfloat16 (the top 16 bits of an f32). */
public enum FloatFormat implements WeightFormat {
    F32 {
        @Override
        public void dequantize(MemorySegment src, long byteOffset, float[] dst, int dstOffset, int count) {
            MemorySegment.copy(src, LittleEndian.FLOAT, byteOffset, dst, dstOffset, count);
        }

        @Override
        public void quantize(float[] src, int srcOffset, int count, MemorySegment dst, long byteOffset) {
            MemorySegment.copy(src, srcOffset, dst, LittleEndian.FLOAT, byteOffset, count);
        }
    },
    F16 {
        @Override
        public void dequantize(MemorySegment src, long byteOffset, float[] dst, int dstOffset, int count) {
            for (int i = 0; i < count; i++) {
                dst[dstOffset + i] = HalfFloat.toFloat(src.get(LittleEndian.SHORT, byteOffset + 2L * i));
            }
        }

        @Override
        public void quantize(float[] src, int srcOffset, int count, MemorySegment dst, long byteOffset) {
            for (int i = 0; i < count; i++) {
                dst.set(LittleEndian.SHORT, byteOffset + 2L * i, HalfFloat.fromFloat(src[srcOffset + i]));
            }
        }
    },
    BF16 {
        @Override
        public void dequantize(MemorySegment src, long byteOffset, float[] dst, int dstOffset, int count) {
            for (int i = 0; i < count; i++) {
                dst[dstOffset + i] = Float.intBitsToFloat(src.get(LittleEndian.SHORT, byteOffset + 2L * i) << 16);
            }
        }

        /** Round to nearest even on the dropped 16 bits, NaN kept quiet (as ggml_compute_fp32_to_bf16). */
        @Override
        public void quantize(float[] src, int srcOffset, int count, MemorySegment dst, long byteOffset) {
            for (int i = 0; i < count; i++) {
                int bits = Float.floatToRawIntBits(src[srcOffset + i]);
                int bf;
                if ((bits & 0x7fffffff) > 0x7f800000) {
                    bf = (bits >>> 16) | 64;
                } else {
                    bf = (bits + (0x7fff + ((bits >>> 16) & 1))) >>> 16;
                }
                dst.set(LittleEndian.SHORT, byteOffset + 2L * i, (short) bf);
            }
        }
    }
}
