package dev.tandem.model.quant;

/**
 * The scale search shared by Q4_K and Q5_K: each 32-element sub-block gets an affine grid
 * x ~ d*sc*q - dmin*m with q in [0, qmax]; sc and m are 6-bit multiples of the super-block's f16 d and dmin.
 * A plain min/max fit (not llama-quantize's weighted search): correct, not optimal.
 */
final class KQuantizer {
    private KQuantizer() {}

    /** Fills scales/mins (6-bit) and levels (0..qmax) for 256 elements at src[x]; returns {d, dmin} as f16 bits. */
    static short[] fitAffine(float[] src, int x, int qmax, int[] scales, int[] mins, int[] levels) {
        float[] step = new float[8];
        float[] offset = new float[8];
        float maxStep = 0, maxOffset = 0;
        for (int j = 0; j < 8; j++) {
            float lo = 0, hi = Float.NEGATIVE_INFINITY;
            for (int i = 0; i < 32; i++) {
                float v = src[x + 32 * j + i];
                lo = Math.min(lo, v);
                hi = Math.max(hi, v);
            }
            // lo <= 0 always, so zero lies on the grid's range and offset = -lo >= 0 fits an unsigned 6-bit min.
            step[j] = (hi - lo) / qmax;
            offset[j] = -lo;
            maxStep = Math.max(maxStep, step[j]);
            maxOffset = Math.max(maxOffset, offset[j]);
        }
        short d16 = HalfFloat.fromFloat(maxStep / 63);
        short dmin16 = HalfFloat.fromFloat(maxOffset / 63);
        float d = HalfFloat.toFloat(d16), dmin = HalfFloat.toFloat(dmin16);
        for (int j = 0; j < 8; j++) {
            scales[j] = d > 0 ? Math.min(63, (int) Math.rint(step[j] / d)) : 0;
            mins[j] = dmin > 0 ? Math.min(63, (int) Math.rint(offset[j] / dmin)) : 0;
            float dl = d * scales[j], dm = dmin * mins[j];
            for (int i = 0; i < 32; i++) {
                int at = 32 * j + i;
                levels[at] = dl > 0 ? Math.clamp((long) Math.rint((src[x + at] + dm) / dl), 0, qmax) : 0;
            }
        }
        return new short[] {d16, dmin16};
    }
}
