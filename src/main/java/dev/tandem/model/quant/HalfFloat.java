package dev.tandem.model.quant;

/**
 * IEEE half precision (ggml_fp16_t). Decoding goes through a 65536-entry table because block scales are
 * decoded once per block in the hottest loops, where a table load is cheaper than the conversion.
 */
public final class HalfFloat {
    private static final float[] TABLE = new float[1 << 16];

    static {
        for (int i = 0; i < TABLE.length; i++) TABLE[i] = Float.float16ToFloat((short) i);
    }

    private HalfFloat() {}

    public static float toFloat(short bits) { return TABLE[bits & 0xFFFF]; }

    /** Round to nearest even, as ggml's GGML_FP32_TO_FP16. */
    public static short fromFloat(float value) { return Float.floatToFloat16(value); }
}
