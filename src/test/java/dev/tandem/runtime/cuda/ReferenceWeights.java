package dev.tandem.runtime.cuda;

import dev.tandem.model.TensorType;

import java.util.Random;

/**
 * Random weight rows in the ggml block layouts, and their values decoded by a plain scalar reading of each
 * format's definition (ggml-common.h / ggml-quants.c), written independently of the kernels' unit decoding.
 */
final class ReferenceWeights {
    private ReferenceWeights() {}

    /** {@code rows} rows of {@code k} elements of {@code type}, random but finite (scales are sane halves). */
    static byte[] random(TensorType type, int rows, int k, Random random) {
        byte[] data = new byte[Math.toIntExact(type.bytesFor((long) rows * k))];
        random.nextBytes(data);
        int blockBytes = type.blockBytes();
        int blocks = data.length / blockBytes;
        for (int b = 0; b < blocks; b++) {
            int o = b * blockBytes;
            switch (type) {
                case F32 -> putFloat(data, o, (random.nextFloat() * 2 - 1));
                case F16 -> putShort(data, o, Float.floatToFloat16(random.nextFloat() * 2 - 1));
                case BF16 -> putShort(data, o, (short) (Float.floatToRawIntBits(random.nextFloat() * 2 - 1) >>> 16));
                case Q8_0, Q4_0 -> putShort(data, o, Float.floatToFloat16(0.001f + 0.02f * random.nextFloat()));
                case Q4_K, Q5_K -> {
                    putShort(data, o, Float.floatToFloat16(0.0005f + 0.005f * random.nextFloat()));
                    putShort(data, o + 2, Float.floatToFloat16(0.0005f + 0.005f * random.nextFloat()));
                }
                case Q6_K -> putShort(data, o + 208, Float.floatToFloat16(0.0005f + 0.002f * random.nextFloat()));
                default -> throw new IllegalArgumentException(type.toString());
            }
        }
        return data;
    }

    /** Row {@code row} (of {@code k} elements) decoded to doubles. */
    static double[] decode(TensorType type, byte[] data, int row, int k) {
        double[] y = new double[k];
        int base = Math.toIntExact(row * type.bytesFor(k));
        switch (type) {
            case F32 -> {
                for (int i = 0; i < k; i++) y[i] = Float.intBitsToFloat(getInt(data, base + 4 * i));
            }
            case F16 -> {
                for (int i = 0; i < k; i++) y[i] = half(data, base + 2 * i);
            }
            case BF16 -> {
                for (int i = 0; i < k; i++) y[i] = Float.intBitsToFloat((data[base + 2 * i] & 0xff) << 16 | (data[base + 2 * i + 1] & 0xff) << 24);
            }
            case Q8_0 -> {
                for (int b = 0; b < k / 32; b++) {
                    int o = base + 34 * b;
                    double d = half(data, o);
                    for (int j = 0; j < 32; j++) y[32 * b + j] = d * data[o + 2 + j];
                }
            }
            case Q4_0 -> {
                for (int b = 0; b < k / 32; b++) {
                    int o = base + 18 * b;
                    double d = half(data, o);
                    for (int j = 0; j < 16; j++) {
                        int q = data[o + 2 + j] & 0xff;
                        y[32 * b + j] = d * ((q & 0xf) - 8);
                        y[32 * b + j + 16] = d * ((q >> 4) - 8);
                    }
                }
            }
            case Q4_K -> {
                for (int b = 0; b < k / 256; b++) {
                    int o = base + 144 * b;
                    double d = half(data, o), dmin = half(data, o + 2);
                    int scales = o + 4, qs = o + 16;
                    int out = 256 * b;
                    // four groups of 64: low nibbles with sub-block scale 2g, high nibbles with 2g + 1
                    for (int g = 0; g < 4; g++) {
                        int[] lo = scaleMin(data, scales, 2 * g), hi = scaleMin(data, scales, 2 * g + 1);
                        for (int l = 0; l < 32; l++) y[out + l] = d * lo[0] * (data[qs + 32 * g + l] & 0xf) - dmin * lo[1];
                        for (int l = 0; l < 32; l++) y[out + 32 + l] = d * hi[0] * ((data[qs + 32 * g + l] & 0xff) >> 4) - dmin * hi[1];
                        out += 64;
                    }
                }
            }
            case Q5_K -> {
                for (int b = 0; b < k / 256; b++) {
                    int o = base + 176 * b;
                    double d = half(data, o), dmin = half(data, o + 2);
                    int scales = o + 4, qh = o + 16, qs = o + 48;
                    int out = 256 * b;
                    // as Q4_K, plus a fifth bit: bit 2g of qh[l] for the low nibbles of group g, bit 2g + 1 for the high
                    for (int g = 0; g < 4; g++) {
                        int[] lo = scaleMin(data, scales, 2 * g), hi = scaleMin(data, scales, 2 * g + 1);
                        for (int l = 0; l < 32; l++) {
                            int q = data[qs + 32 * g + l] & 0xff, h = data[qh + l] & 0xff;
                            y[out + l] = d * lo[0] * ((q & 0xf) + 16 * ((h >> (2 * g)) & 1)) - dmin * lo[1];
                            y[out + 32 + l] = d * hi[0] * ((q >> 4) + 16 * ((h >> (2 * g + 1)) & 1)) - dmin * hi[1];
                        }
                        out += 64;
                    }
                }
            }
            case Q6_K -> {
                for (int b = 0; b < k / 256; b++) {
                    int o = base + 210 * b;
                    double d = half(data, o + 208);
                    for (int n = 0; n < 2; n++) {
                        int ql = o + 64 * n, qh = o + 128 + 32 * n, sc = o + 192 + 8 * n, out = 256 * b + 128 * n;
                        for (int l = 0; l < 32; l++) {
                            int is = l / 16;
                            int h = data[qh + l] & 0xff;
                            int q1 = ((data[ql + l] & 0xf) | ((h & 3) << 4)) - 32;
                            int q2 = ((data[ql + l + 32] & 0xf) | (((h >> 2) & 3) << 4)) - 32;
                            int q3 = (((data[ql + l] & 0xff) >> 4) | (((h >> 4) & 3) << 4)) - 32;
                            int q4 = (((data[ql + l + 32] & 0xff) >> 4) | (((h >> 6) & 3) << 4)) - 32;
                            y[out + l] = d * data[sc + is] * q1;
                            y[out + l + 32] = d * data[sc + is + 2] * q2;
                            y[out + l + 64] = d * data[sc + is + 4] * q3;
                            y[out + l + 96] = d * data[sc + is + 6] * q4;
                        }
                    }
                }
            }
            default -> throw new IllegalArgumentException(type.toString());
        }
        return y;
    }

    /** The 6-bit scale and min of sub-block j of a Q4_K super-block (the packing of ggml's get_scale_min_k4). */
    private static int[] scaleMin(byte[] data, int s, int j) {
        if (j < 4) return new int[] {data[s + j] & 63, data[s + j + 4] & 63};
        int sc = (data[s + j + 4] & 0xf) | (((data[s + j - 4] & 0xff) >> 6) << 4);
        int m = ((data[s + j + 4] & 0xff) >> 4) | (((data[s + j] & 0xff) >> 6) << 4);
        return new int[] {sc, m};
    }

    private static double half(byte[] data, int o) {
        return Float.float16ToFloat((short) ((data[o] & 0xff) | (data[o + 1] & 0xff) << 8));
    }

    private static int getInt(byte[] data, int o) {
        return (data[o] & 0xff) | (data[o + 1] & 0xff) << 8 | (data[o + 2] & 0xff) << 16 | (data[o + 3] & 0xff) << 24;
    }

    private static void putShort(byte[] data, int o, short v) {
        data[o] = (byte) v;
        data[o + 1] = (byte) (v >> 8);
    }

    private static void putFloat(byte[] data, int o, float f) {
        int v = Float.floatToRawIntBits(f);
        for (int i = 0; i < 4; i++) data[o + i] = (byte) (v >> (8 * i));
    }
}
