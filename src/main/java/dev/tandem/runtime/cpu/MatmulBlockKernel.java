package dev.tandem.runtime.cpu;

import dev.tandem.model.Tensor;
import dev.tandem.model.TensorType;
import dev.tandem.model.quant.HalfFloat;
import dev.tandem.model.quant.KScales;
import dev.tandem.model.quant.LittleEndian;
import dev.tandem.model.quant.Q4KFormat;
import dev.tandem.model.quant.Q5KFormat;
import dev.tandem.model.quant.Q6KFormat;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/**
 * Quantised weights against quantised activations, with llama.cpp's integer block arithmetic:
 * Q8_0 and Q4_0 against Q8_0 activation blocks of 32; Q4_K, Q5_K and Q6_K against Q8_K blocks of 256.
 *
 * <p>A weight row is unpacked to int-valued floats (K-quants: already times their 6- or 8-bit sub-block
 * scale). For each group (one weight block), every lane sums its exact integer products (|lane| < 2^24
 * for 8 or more lanes), then acc += lane * (d_w * d_x) with one FMA per lane. K-quant mins are an integer
 * sum of min * (activation sums per 32), scaled by dmin_w * d_x and subtracted at the end.
 */
final class MatmulBlockKernel extends MatmulKernel {
    private final TensorType type;
    private final int group;        // weight block = activation block length
    private final int groups;       // per row
    private final boolean hasMins;  // Q4_K, Q5_K

    MatmulBlockKernel(Tensor tensor) {
        super(tensor);
        this.type = tensor.type();
        this.group = type.blockSize();
        this.groups = columns / group;
        this.hasMins = type == TensorType.Q4_K || type == TensorType.Q5_K;
    }

    private boolean usesQ8K() { return group == Activations.Q8_K_BLOCK; }

    @Override
    void prepare(Activations x, WorkerPool pool) {
        if (usesQ8K()) x.prepareQ8K(pool);
        else x.prepareQ80(pool);
    }

    @Override
    void unpack(int row, MatmulScratch s, int slot) {
        long at = row * rowBytes;
        int wo = slot * columns, so = slot * groups;
        switch (type) {
            case Q8_0 -> unpackQ8_0(at, s, wo, so);
            case Q4_0 -> unpackQ4_0(at, s, wo, so);
            case Q4_K -> unpackQ4K(at, s, wo, so, slot);
            case Q5_K -> unpackQ5K(at, s, wo, so, slot);
            case Q6_K -> unpackQ6K(at, s, wo, so);
            default -> throw new IllegalStateException(type + " is not a block type");
        }
    }

    /** Q8_0 follows its own contract (see {@link MatmulQ80Direct}): unpacked as w' = q * d, the scale folded in. */
    private void unpackQ8_0(long at, MatmulScratch s, int wo, int so) {
        for (int g = 0; g < groups; g++, at += 34) {
            float d = HalfFloat.toFloat(data.get(LittleEndian.SHORT, at));
            for (int i = 0; i < 32; i += BL) toFloats(bytes(data, at + 2 + i), d, s.weights, wo + 32 * g + i);
        }
    }

    /** Byte j: element j in the low nibble, element j+16 in the high one; value = nibble - 8. */
    private void unpackQ4_0(long at, MatmulScratch s, int wo, int so) {
        for (int g = 0; g < groups; g++, at += 18) {
            s.scales[so + g] = HalfFloat.toFloat(data.get(LittleEndian.SHORT, at));
            for (int i = 0; i < 16; i += BL) {
                ByteVector v = bytes(data, at + 2 + i);
                toFloats(v.and((byte) 0x0F).sub((byte) 8), s.weights, wo + 32 * g + i);
                toFloats(v.lanewise(VectorOperators.LSHR, 4).and((byte) 0x0F).sub((byte) 8), s.weights, wo + 32 * g + 16 + i);
            }
        }
    }

    private void kScales(long at, MatmulScratch s, int so, int slot, int g, int[] sc) {
        s.scales[so + g] = HalfFloat.toFloat(data.get(LittleEndian.SHORT, at));
        s.minScales[so + g] = HalfFloat.toFloat(data.get(LittleEndian.SHORT, at + 2));
        int mo = slot * (columns / 32) + 8 * g;
        for (int j = 0; j < 8; j++) {
            sc[j] = KScales.scale(data, at + 4, j);
            s.mins[mo + j] = KScales.min(data, at + 4, j);
        }
    }

    private void unpackQ4K(long at, MatmulScratch s, int wo, int so, int slot) {
        int[] sc = s.subScales;
        for (int g = 0; g < groups; g++, at += Q4KFormat.BLOCK_BYTES) {
            kScales(at, s, so, slot, g, sc);
            int y = wo + 256 * g;
            for (int p = 0; p < 4; p++) {
                for (int i = 0; i < 32; i += BL) {
                    ByteVector v = bytes(data, at + Q4KFormat.QS + 32 * p + i);
                    toFloats(v.and((byte) 0x0F), sc[2 * p], s.weights, y + 64 * p + i);
                    toFloats(v.lanewise(VectorOperators.LSHR, 4).and((byte) 0x0F), sc[2 * p + 1], s.weights, y + 64 * p + 32 + i);
                }
            }
        }
    }

    private void unpackQ5K(long at, MatmulScratch s, int wo, int so, int slot) {
        int[] sc = s.subScales;
        for (int g = 0; g < groups; g++, at += Q5KFormat.BLOCK_BYTES) {
            kScales(at, s, so, slot, g, sc);
            int y = wo + 256 * g;
            for (int i = 0; i < 32; i += BL) {
                ByteVector h = bytes(data, at + Q5KFormat.QH + i);
                for (int p = 0; p < 4; p++) {
                    ByteVector v = bytes(data, at + Q5KFormat.QS + 32 * p + i);
                    ByteVector lo = v.and((byte) 0x0F).or(h.lanewise(VectorOperators.LSHR, 2 * p).and((byte) 1).lanewise(VectorOperators.LSHL, 4));
                    ByteVector hi = v.lanewise(VectorOperators.LSHR, 4).and((byte) 0x0F)
                            .or(h.lanewise(VectorOperators.LSHR, 2 * p + 1).and((byte) 1).lanewise(VectorOperators.LSHL, 4));
                    toFloats(lo, sc[2 * p], s.weights, y + 64 * p + i);
                    toFloats(hi, sc[2 * p + 1], s.weights, y + 64 * p + 32 + i);
                }
            }
        }
    }

    private void unpackQ6K(long at, MatmulScratch s, int wo, int so) {
        int[] sc = s.subScales;
        for (int g = 0; g < groups; g++, at += Q6KFormat.BLOCK_BYTES) {
            s.scales[so + g] = HalfFloat.toFloat(data.get(LittleEndian.SHORT, at + Q6KFormat.D));
            for (int j = 0; j < 16; j++) sc[j] = data.get(LittleEndian.BYTE, at + Q6KFormat.SCALES + j);
            for (int n = 0; n < 2; n++) {
                long ql = at + Q6KFormat.QL + 64 * n, qh = at + Q6KFormat.QH + 32 * n;
                int y = wo + 256 * g + 128 * n, is = 8 * n;
                for (int i = 0; i < 32; i += BL) {
                    // quarter q (elements 32q..32q+31 of the half): ql[32*(q&1)], nibble q>>1, qh bits 2q
                    for (int q = 0; q < 4; q++) {  // one call site: four inlined copies exceeded C2's node budget and boxed
                        q6Part(ql + 32 * (q & 1) + i, 4 * (q >> 1), qh + i, 2 * q, sc[is + i / 16 + 2 * q], s.weights, y + 32 * q + i);
                    }
                }
            }
        }
    }

    /**
     * BL elements of a Q6_K quarter: 4 low bits from a nibble of ql (lowShift 0 or 4), 2 high bits from qh at {@code shift},
     * minus 32, times the group scale. A method of its own so that each compiled unit stays small enough
     * for C2 to keep the vectors in registers (one big method made it box them).
     */
    private void q6Part(long lowAt, int lowShift, long highAt, int shift, int scale, float[] dst, int at) {
        ByteVector low = bytes(data, lowAt).lanewise(VectorOperators.LSHR, lowShift);   // no branch: a vector phi would box
        ByteVector high = bytes(data, highAt).lanewise(VectorOperators.LSHR, shift).and((byte) 3).lanewise(VectorOperators.LSHL, 4);
        toFloats(low.and((byte) 0x0F).or(high).sub((byte) 32), scale, dst, at);
    }

    @Override
    void dot(MatmulScratch s, int n, Activations x, int r, float[] out, int outAt) {
        if (type == TensorType.Q8_0) {
            for (int k = 0; k < n; k++) out[outAt + k] = dotQ8_0(s.weights, k * columns, x.q80Scaled(), r * columns, s.lanes);
            return;
        }
        float[] w = s.weights, ws = s.scales;
        float[] xq = usesQ8K() ? x.q8kValues() : x.q80Values();
        float[] xs = usesQ8K() ? x.q8kScales() : x.q80Scales();
        int xo = r * columns, xso = r * groups;
        if (n == TILE) {
            int w1 = columns, w2 = 2 * columns, w3 = 3 * columns;
            FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
            for (int g = 0; g < groups; g++) {
                int base = g * group;
                FloatVector xx = FloatVector.fromArray(F, xq, xo + base);
                FloatVector s0 = FloatVector.fromArray(F, w, base).mul(xx);
                FloatVector s1 = FloatVector.fromArray(F, w, w1 + base).mul(xx);
                FloatVector s2 = FloatVector.fromArray(F, w, w2 + base).mul(xx);
                FloatVector s3 = FloatVector.fromArray(F, w, w3 + base).mul(xx);
                for (int i = base + L; i < base + group; i += L) {  // exact: integer products and sums
                    xx = FloatVector.fromArray(F, xq, xo + i);
                    s0 = FloatVector.fromArray(F, w, i).fma(xx, s0);
                    s1 = FloatVector.fromArray(F, w, w1 + i).fma(xx, s1);
                    s2 = FloatVector.fromArray(F, w, w2 + i).fma(xx, s2);
                    s3 = FloatVector.fromArray(F, w, w3 + i).fma(xx, s3);
                }
                float dx = xs[xso + g];
                a0 = s0.fma(FloatVector.broadcast(F, ws[g] * dx), a0);
                a1 = s1.fma(FloatVector.broadcast(F, ws[groups + g] * dx), a1);
                a2 = s2.fma(FloatVector.broadcast(F, ws[2 * groups + g] * dx), a2);
                a3 = s3.fma(FloatVector.broadcast(F, ws[3 * groups + g] * dx), a3);
            }
            out[outAt] = finish(sumLanes(a0, s.lanes), s, 0, x, r);
            out[outAt + 1] = finish(sumLanes(a1, s.lanes), s, 1, x, r);
            out[outAt + 2] = finish(sumLanes(a2, s.lanes), s, 2, x, r);
            out[outAt + 3] = finish(sumLanes(a3, s.lanes), s, 3, x, r);
            return;
        }
        for (int k = 0; k < n; k++) {
            int wo = k * columns;
            FloatVector a = FloatVector.zero(F);
            for (int g = 0; g < groups; g++) {
                int base = g * group;
                FloatVector sum = FloatVector.fromArray(F, w, wo + base).mul(FloatVector.fromArray(F, xq, xo + base));
                for (int i = base + L; i < base + group; i += L) {
                    sum = FloatVector.fromArray(F, w, wo + i).fma(FloatVector.fromArray(F, xq, xo + i), sum);
                }
                a = sum.fma(FloatVector.broadcast(F, ws[k * groups + g] * xs[xso + g]), a);
            }
            out[outAt + k] = finish(sumLanes(a, s.lanes), s, k, x, r);
        }
    }

    /** The Q8_0 contract of {@link MatmulQ80Direct}: even L-parts into e, odd ones into o, then lanes of e + o. */
    private float dotQ8_0(float[] w, int wo, float[] xs, int xo, float[] lanes) {
        FloatVector e = FloatVector.zero(F), o = e;
        for (int i = 0; i < columns; i += 2 * L) {
            e = FloatVector.fromArray(F, w, wo + i).fma(FloatVector.fromArray(F, xs, xo + i), e);
            o = FloatVector.fromArray(F, w, wo + i + L).fma(FloatVector.fromArray(F, xs, xo + i + L), o);
        }
        return sumLanes(e.add(o), lanes);
    }

    /** Subtracts the K-quant min term: sum over groups of dmin_w*d_x * (sum of min_j * activation sum_j). */
    private float finish(float sum, MatmulScratch s, int slot, Activations x, int r) {
        if (!hasMins) return sum;
        int[] xsum = x.q8kSums();
        float[] xs = x.q8kScales();
        int mo = slot * (columns / 32), xo = r * (columns / 32);
        float minTerm = 0;
        for (int g = 0; g < groups; g++) {
            int m = 0;
            for (int j = 0; j < 8; j++) m += s.mins[mo + 8 * g + j] * xsum[xo + 8 * g + j];
            minTerm += s.minScales[slot * groups + g] * xs[r * groups + g] * m;
        }
        return sum - minTerm;
    }
}
