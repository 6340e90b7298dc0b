package dev.tandem.runtime.cpu;

import dev.tandem.model.quant.HalfFloat;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Q8_0 weights times Q8_0 activations without an unpacking pass: each 32-byte weight block is widened to
 * floats in registers and used at once for 1, 2 or 4 activation rows, two weight rows at a time, so a weight
 * row is read from memory once per pass and few instructions are spent per weight byte.
 *
 * <p>Arithmetic, per (weight row, activation row) and exactly as {@link MatmulBlockKernel#dot}: for block g,
 * lanes s = w[part 0]*x[part 0], then s = fma(w[part p], x[part p], s); acc = fma(s, d_w*d_x, acc); at the end
 * the lanes of acc are summed in lane order. The same operations run whichever register block a row falls
 * in, so results are bit-identical to the unpacking kernel and independent of the batch.
 */
final class MatmulQ80Direct {
    static final VectorSpecies<Float> F = MatmulKernel.F;
    static final int L = F.length();
    /** L bytes: one load widens to one float vector. */
    static final VectorSpecies<Byte> BYTES = L >= 8 ? VectorSpecies.of(byte.class, VectorShape.forBitSize(L * 8)) : null;
    static final int PARTS = 32 / L;
    static final int BLOCK_BYTES = 34;

    private MatmulQ80Direct() {}

    /** Usable on this machine: a float vector of 8 or 16 lanes. */
    static boolean supported() { return L == 8 || L == 16; }

    /** The 32 quants of a block in one load (bounds and liveness checks are paid once per block, not per part). */
    static final VectorSpecies<Byte> BLOCK = ByteVector.SPECIES_256;

    private static ByteVector quants(byte[] w, int blockAt) {
        return ByteVector.fromArray(BLOCK, w, blockAt + 2);
    }

    /** Floats of part {@code p} (L quants) of a block's quants. */
    private static FloatVector part(ByteVector q, int p) {
        return (FloatVector) q.convertShape(VectorOperators.B2F, F, p);
    }

    private static float scale(byte[] w, int blockAt) {
        return HalfFloat.toFloat((short) ((w[blockAt] & 0xFF) | (w[blockAt + 1] << 8)));
    }

    /**
     * out[r*outRows + o] for weight rows o in [first, end) and every activation row r < batch. Each pair of weight
     * rows is first copied from the mapped file into {@code rows} (one bulk copy, which streams the bytes from
     * memory once) so that the vector loads that follow are plain array loads from L1, without a segment's
     * per-access bounds and liveness checks.
     */
    static void multiply(MemorySegment w, long rowBytes, int columns, int first, int end,
                         float[] xq, float[] xs, int batch, float[] out, int outRows, float[] lanes, byte[] rows) {
        int bytes = (int) rowBytes;
        for (int o = first; o < end; o += 2) {
            int o1 = Math.min(o + 1, end - 1); // an odd last row is paired with itself
            MemorySegment.copy(w, ValueLayout.JAVA_BYTE, o * rowBytes, rows, 0, bytes);
            if (o1 != o) MemorySegment.copy(w, ValueLayout.JAVA_BYTE, o1 * rowBytes, rows, bytes, bytes);
            int at0 = 0, at1 = o1 != o ? bytes : 0;
            int r = 0;
            if (L == 16) {
                for (; r + 4 <= batch; r += 4) quad(rows, at0, at1, columns, xq, xs, r, out, outRows, o, o1, lanes);
            }
            for (; r + 2 <= batch; r += 2) pair(rows, at0, at1, columns, xq, xs, r, out, outRows, o, o1, lanes);
            for (; r < batch; r++) single(rows, at0, at1, columns, xq, xs, r, out, outRows, o, o1, lanes);
        }
    }

    private static void single(byte[] w, int at0, int at1, int columns, float[] xq, float[] xs, int r,
                               float[] out, int outRows, int o0, int o1, float[] lanes) {
        int groups = columns / 32;
        FloatVector a0 = FloatVector.zero(F), a1 = a0;
        for (int g = 0; g < groups; g++) {
            int b0 = at0 + g * BLOCK_BYTES, b1 = at1 + g * BLOCK_BYTES;
            int xo = r * columns + 32 * g;
            ByteVector q0 = quants(w, b0), q1 = quants(w, b1);
            FloatVector x = FloatVector.fromArray(F, xq, xo);
            FloatVector s0 = part(q0, 0).mul(x), s1 = part(q1, 0).mul(x);
            for (int p = 1; p < PARTS; p++) {
                x = FloatVector.fromArray(F, xq, xo + p * L);
                s0 = part(q0, p).fma(x, s0);
                s1 = part(q1, p).fma(x, s1);
            }
            float dx = xs[r * groups + g];
            a0 = s0.fma(FloatVector.broadcast(F, scale(w, b0) * dx), a0);
            a1 = s1.fma(FloatVector.broadcast(F, scale(w, b1) * dx), a1);
        }
        out[r * outRows + o0] = MatmulKernel.sumLanes(a0, lanes);
        out[r * outRows + o1] = MatmulKernel.sumLanes(a1, lanes);
    }

    private static void pair(byte[] w, int at0, int at1, int columns, float[] xq, float[] xs, int r,
                             float[] out, int outRows, int o0, int o1, float[] lanes) {
        int groups = columns / 32;
        FloatVector a00 = FloatVector.zero(F), a01 = a00, a10 = a00, a11 = a00;
        for (int g = 0; g < groups; g++) {
            int b0 = at0 + g * BLOCK_BYTES, b1 = at1 + g * BLOCK_BYTES;
            int xa = r * columns + 32 * g, xb = xa + columns;
            ByteVector q0 = quants(w, b0), q1 = quants(w, b1);
            FloatVector w0 = part(q0, 0), w1 = part(q1, 0);
            FloatVector xA = FloatVector.fromArray(F, xq, xa), xB = FloatVector.fromArray(F, xq, xb);
            FloatVector s00 = w0.mul(xA), s01 = w0.mul(xB), s10 = w1.mul(xA), s11 = w1.mul(xB);
            for (int p = 1; p < PARTS; p++) {
                w0 = part(q0, p);
                w1 = part(q1, p);
                xA = FloatVector.fromArray(F, xq, xa + p * L);
                xB = FloatVector.fromArray(F, xq, xb + p * L);
                s00 = w0.fma(xA, s00);
                s01 = w0.fma(xB, s01);
                s10 = w1.fma(xA, s10);
                s11 = w1.fma(xB, s11);
            }
            float d0 = scale(w, b0), d1 = scale(w, b1);
            float dA = xs[r * groups + g], dB = xs[(r + 1) * groups + g];
            a00 = s00.fma(FloatVector.broadcast(F, d0 * dA), a00);
            a01 = s01.fma(FloatVector.broadcast(F, d0 * dB), a01);
            a10 = s10.fma(FloatVector.broadcast(F, d1 * dA), a10);
            a11 = s11.fma(FloatVector.broadcast(F, d1 * dB), a11);
        }
        out[r * outRows + o0] = MatmulKernel.sumLanes(a00, lanes);
        out[(r + 1) * outRows + o0] = MatmulKernel.sumLanes(a01, lanes);
        out[r * outRows + o1] = MatmulKernel.sumLanes(a10, lanes);
        out[(r + 1) * outRows + o1] = MatmulKernel.sumLanes(a11, lanes);
    }

    private static void quad(byte[] w, int at0, int at1, int columns, float[] xq, float[] xs, int r,
                             float[] out, int outRows, int o0, int o1, float[] lanes) {
        int groups = columns / 32;
        FloatVector a00 = FloatVector.zero(F), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00, a13 = a00;
        for (int g = 0; g < groups; g++) {
            int b0 = at0 + g * BLOCK_BYTES, b1 = at1 + g * BLOCK_BYTES;
            int x0 = r * columns + 32 * g, x1 = x0 + columns, x2 = x1 + columns, x3 = x2 + columns;
            ByteVector q0 = quants(w, b0), q1 = quants(w, b1);
            FloatVector w0 = part(q0, 0), w1 = part(q1, 0);
            FloatVector v = FloatVector.fromArray(F, xq, x0);
            FloatVector s00 = w0.mul(v), s10 = w1.mul(v);
            v = FloatVector.fromArray(F, xq, x1);
            FloatVector s01 = w0.mul(v), s11 = w1.mul(v);
            v = FloatVector.fromArray(F, xq, x2);
            FloatVector s02 = w0.mul(v), s12 = w1.mul(v);
            v = FloatVector.fromArray(F, xq, x3);
            FloatVector s03 = w0.mul(v), s13 = w1.mul(v);
            for (int p = 1; p < PARTS; p++) {
                int d = p * L;
                w0 = part(q0, p);
                w1 = part(q1, p);
                v = FloatVector.fromArray(F, xq, x0 + d);
                s00 = w0.fma(v, s00);
                s10 = w1.fma(v, s10);
                v = FloatVector.fromArray(F, xq, x1 + d);
                s01 = w0.fma(v, s01);
                s11 = w1.fma(v, s11);
                v = FloatVector.fromArray(F, xq, x2 + d);
                s02 = w0.fma(v, s02);
                s12 = w1.fma(v, s12);
                v = FloatVector.fromArray(F, xq, x3 + d);
                s03 = w0.fma(v, s03);
                s13 = w1.fma(v, s13);
            }
            float d0 = scale(w, b0), d1 = scale(w, b1);
            int xg = r * groups + g;
            float e0 = xs[xg], e1 = xs[xg + groups], e2 = xs[xg + 2 * groups], e3 = xs[xg + 3 * groups];
            a00 = s00.fma(FloatVector.broadcast(F, d0 * e0), a00);
            a01 = s01.fma(FloatVector.broadcast(F, d0 * e1), a01);
            a02 = s02.fma(FloatVector.broadcast(F, d0 * e2), a02);
            a03 = s03.fma(FloatVector.broadcast(F, d0 * e3), a03);
            a10 = s10.fma(FloatVector.broadcast(F, d1 * e0), a10);
            a11 = s11.fma(FloatVector.broadcast(F, d1 * e1), a11);
            a12 = s12.fma(FloatVector.broadcast(F, d1 * e2), a12);
            a13 = s13.fma(FloatVector.broadcast(F, d1 * e3), a13);
        }
        out[r * outRows + o0] = MatmulKernel.sumLanes(a00, lanes);
        out[(r + 1) * outRows + o0] = MatmulKernel.sumLanes(a01, lanes);
        out[(r + 2) * outRows + o0] = MatmulKernel.sumLanes(a02, lanes);
        out[(r + 3) * outRows + o0] = MatmulKernel.sumLanes(a03, lanes);
        out[r * outRows + o1] = MatmulKernel.sumLanes(a10, lanes);
        out[(r + 1) * outRows + o1] = MatmulKernel.sumLanes(a11, lanes);
        out[(r + 2) * outRows + o1] = MatmulKernel.sumLanes(a12, lanes);
        out[(r + 3) * outRows + o1] = MatmulKernel.sumLanes(a13, lanes);
    }
}
