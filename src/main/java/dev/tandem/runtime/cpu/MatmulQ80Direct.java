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
 * Q8_0 weights times Q8_0 activations without an unpacking pass: two weight rows at a time, each 32-byte
 * block widened to floats in registers and used at once for up to {@link #MAX_ROWS} activation rows, so a
 * weight row is read from memory once per pass and the widening is shared by every row of the batch.
 *
 * <p>Arithmetic (the Q8_0 contract, also kept by {@link MatmulBlockKernel}): weights w' = float(q_w) * d_w and
 * activations x' = float(q_x) * d_x (both rounded to float once); per (weight row, activation row) two
 * accumulators of L lanes, e and o, take acc = fma(w', x', acc) for the L-element parts of the row in column
 * order, even parts into e, odd parts into o (two chains: one would wait on FMA latency); the result is the
 * lanes of e + o summed in lane order. The per-block scale is folded into w' and x', so a batch row costs two
 * FMAs per block and no scale product. The same operations run whichever register block a row falls in, so
 * results are bit-identical to the unpacking kernel and independent of the batch.
 */
final class MatmulQ80Direct {
    static final VectorSpecies<Float> F = MatmulKernel.F;
    static final int L = F.length();
    /** L quants: one load widens to one float vector. */
    private static final VectorSpecies<Byte> PART = L >= 8 ? VectorSpecies.of(byte.class, VectorShape.forBitSize(L * 8)) : null;
    static final int BLOCK_BYTES = 34;
    /** Activation rows per register block: 4 accumulators each, within 32 vector registers (16 for 8 lanes). */
    static final int MAX_ROWS = L == 16 ? 5 : 2;

    private MatmulQ80Direct() {}

    /** Usable on this machine: a float vector of 8 or 16 lanes. */
    static boolean supported() { return L == 8 || L == 16; }

    /** L weights from element e of the block at blockAt, times the block's scale d: the contract's w'. */
    private static FloatVector weights(byte[] q, int blockAt, int e, FloatVector d) {
        return ((FloatVector) ByteVector.fromArray(PART, q, blockAt + 2 + e).convertShape(VectorOperators.B2F, F, 0)).mul(d);
    }

    /** The L lanes of e + o, stored in lanes, summed in lane order (a helper taking vectors would box them). */
    private static float sumLanes(float[] lanes) {
        float sum = 0;
        for (int i = 0; i < L; i++) sum += lanes[i];
        return sum;
    }

    /**
     * out[r*outRows + o] for weight rows o in [first, end) and every activation row r < batch; x holds the
     * scaled activations x'. Each pair of weight rows is first copied from the mapped file into {@code rows}
     * (one bulk copy, which streams the bytes from memory once) so that the vector loads that follow are
     * plain array loads from L1, without a segment's per-access checks; their block scales go to
     * {@code scales} (row 0 at 0, row 1 at groups).
     */
    static void multiply(MemorySegment w, long rowBytes, int columns, int first, int end,
                         float[] x, int batch, float[] out, int outRows, float[] lanes, byte[] rows, float[] scales) {
        int bytes = (int) rowBytes, groups = columns / 32;
        for (int o = first; o < end; o += 2) {
            int o1 = Math.min(o + 1, end - 1); // an odd last row is paired with itself
            MemorySegment.copy(w, ValueLayout.JAVA_BYTE, o * rowBytes, rows, 0, bytes);
            if (o1 != o) MemorySegment.copy(w, ValueLayout.JAVA_BYTE, o1 * rowBytes, rows, bytes, bytes);
            int at0 = 0, at1 = o1 != o ? bytes : 0;
            for (int g = 0; g < groups; g++) {
                scales[g] = scale(rows, at0 + g * BLOCK_BYTES);
                scales[groups + g] = scale(rows, at1 + g * BLOCK_BYTES);
            }
            for (int r = 0; r < batch; ) {
                int n = Math.min(MAX_ROWS, batch - r);
                switch (n) {
                    case 1 -> rows1(rows, at0, at1, scales, groups, columns, x, r, out, outRows, o, o1, lanes);
                    case 2 -> rows2(rows, at0, at1, scales, groups, columns, x, r, out, outRows, o, o1, lanes);
                    case 3 -> rows3(rows, at0, at1, scales, groups, columns, x, r, out, outRows, o, o1, lanes);
                    case 4 -> rows4(rows, at0, at1, scales, groups, columns, x, r, out, outRows, o, o1, lanes);
                    default -> rows5(rows, at0, at1, scales, groups, columns, x, r, out, outRows, o, o1, lanes);
                }
                r += n;
            }
        }
    }

    private static float scale(byte[] w, int blockAt) {
        return HalfFloat.toFloat((short) ((w[blockAt] & 0xFF) | (w[blockAt + 1] << 8)));
    }

    // rowsN: activation rows r..r+N-1 against weight rows o0 and o1. Written out per N so that every
    // accumulator is a local C2 can keep in a register; accumulator aIWP is activation row r+I, weight row
    // oW, parity P.

    private static void rows1(byte[] q, int at0, int at1, float[] d, int groups, int columns, float[] x, int r,
                          float[] out, int outRows, int o0, int o1, float[] lanes) {
        FloatVector a00e = FloatVector.zero(F), a00o = a00e, a01e = a00e, a01o = a00e;
        for (int c = 0; c < columns; c += 2 * L) {  // c: first column of an even part
            int g = c >>> 5, b0 = at0 + g * BLOCK_BYTES + (c & 31), b1 = at1 + g * BLOCK_BYTES + (c & 31), x0 = r * columns + c;
            FloatVector d0 = FloatVector.broadcast(F, d[g]), d1 = FloatVector.broadcast(F, d[groups + g]);
            FloatVector w0 = weights(q, b0, 0, d0), w1 = weights(q, b1, 0, d1);
            FloatVector v = FloatVector.fromArray(F, x, x0);
            a00e = w0.fma(v, a00e);
            a01e = w1.fma(v, a01e);
            w0 = weights(q, b0, L, d0);
            w1 = weights(q, b1, L, d1);
            v = FloatVector.fromArray(F, x, x0 + L);
            a00o = w0.fma(v, a00o);
            a01o = w1.fma(v, a01o);
        }
        a00e.add(a00o).intoArray(lanes, 0);
        out[r * outRows + o0] = sumLanes(lanes);
        a01e.add(a01o).intoArray(lanes, 0);
        out[r * outRows + o1] = sumLanes(lanes);
    }

    private static void rows2(byte[] q, int at0, int at1, float[] d, int groups, int columns, float[] x, int r,
                          float[] out, int outRows, int o0, int o1, float[] lanes) {
        FloatVector a00e = FloatVector.zero(F), a00o = a00e, a01e = a00e, a01o = a00e, a10e = a00e, a10o = a00e, a11e = a00e, a11o = a00e;
        for (int c = 0; c < columns; c += 2 * L) {  // c: first column of an even part
            int g = c >>> 5, b0 = at0 + g * BLOCK_BYTES + (c & 31), b1 = at1 + g * BLOCK_BYTES + (c & 31), x0 = r * columns + c, x1 = x0 + columns;
            FloatVector d0 = FloatVector.broadcast(F, d[g]), d1 = FloatVector.broadcast(F, d[groups + g]);
            FloatVector w0 = weights(q, b0, 0, d0), w1 = weights(q, b1, 0, d1);
            FloatVector v = FloatVector.fromArray(F, x, x0);
            a00e = w0.fma(v, a00e);
            a01e = w1.fma(v, a01e);
            v = FloatVector.fromArray(F, x, x1);
            a10e = w0.fma(v, a10e);
            a11e = w1.fma(v, a11e);
            w0 = weights(q, b0, L, d0);
            w1 = weights(q, b1, L, d1);
            v = FloatVector.fromArray(F, x, x0 + L);
            a00o = w0.fma(v, a00o);
            a01o = w1.fma(v, a01o);
            v = FloatVector.fromArray(F, x, x1 + L);
            a10o = w0.fma(v, a10o);
            a11o = w1.fma(v, a11o);
        }
        a00e.add(a00o).intoArray(lanes, 0);
        out[r * outRows + o0] = sumLanes(lanes);
        a01e.add(a01o).intoArray(lanes, 0);
        out[r * outRows + o1] = sumLanes(lanes);
        a10e.add(a10o).intoArray(lanes, 0);
        out[(r + 1) * outRows + o0] = sumLanes(lanes);
        a11e.add(a11o).intoArray(lanes, 0);
        out[(r + 1) * outRows + o1] = sumLanes(lanes);
    }

    private static void rows3(byte[] q, int at0, int at1, float[] d, int groups, int columns, float[] x, int r,
                          float[] out, int outRows, int o0, int o1, float[] lanes) {
        FloatVector a00e = FloatVector.zero(F), a00o = a00e, a01e = a00e, a01o = a00e, a10e = a00e, a10o = a00e, a11e = a00e, a11o = a00e, a20e = a00e, a20o = a00e, a21e = a00e, a21o = a00e;
        for (int c = 0; c < columns; c += 2 * L) {  // c: first column of an even part
            int g = c >>> 5, b0 = at0 + g * BLOCK_BYTES + (c & 31), b1 = at1 + g * BLOCK_BYTES + (c & 31), x0 = r * columns + c, x1 = x0 + columns, x2 = x1 + columns;
            FloatVector d0 = FloatVector.broadcast(F, d[g]), d1 = FloatVector.broadcast(F, d[groups + g]);
            FloatVector w0 = weights(q, b0, 0, d0), w1 = weights(q, b1, 0, d1);
            FloatVector v = FloatVector.fromArray(F, x, x0);
            a00e = w0.fma(v, a00e);
            a01e = w1.fma(v, a01e);
            v = FloatVector.fromArray(F, x, x1);
            a10e = w0.fma(v, a10e);
            a11e = w1.fma(v, a11e);
            v = FloatVector.fromArray(F, x, x2);
            a20e = w0.fma(v, a20e);
            a21e = w1.fma(v, a21e);
            w0 = weights(q, b0, L, d0);
            w1 = weights(q, b1, L, d1);
            v = FloatVector.fromArray(F, x, x0 + L);
            a00o = w0.fma(v, a00o);
            a01o = w1.fma(v, a01o);
            v = FloatVector.fromArray(F, x, x1 + L);
            a10o = w0.fma(v, a10o);
            a11o = w1.fma(v, a11o);
            v = FloatVector.fromArray(F, x, x2 + L);
            a20o = w0.fma(v, a20o);
            a21o = w1.fma(v, a21o);
        }
        a00e.add(a00o).intoArray(lanes, 0);
        out[r * outRows + o0] = sumLanes(lanes);
        a01e.add(a01o).intoArray(lanes, 0);
        out[r * outRows + o1] = sumLanes(lanes);
        a10e.add(a10o).intoArray(lanes, 0);
        out[(r + 1) * outRows + o0] = sumLanes(lanes);
        a11e.add(a11o).intoArray(lanes, 0);
        out[(r + 1) * outRows + o1] = sumLanes(lanes);
        a20e.add(a20o).intoArray(lanes, 0);
        out[(r + 2) * outRows + o0] = sumLanes(lanes);
        a21e.add(a21o).intoArray(lanes, 0);
        out[(r + 2) * outRows + o1] = sumLanes(lanes);
    }

    private static void rows4(byte[] q, int at0, int at1, float[] d, int groups, int columns, float[] x, int r,
                          float[] out, int outRows, int o0, int o1, float[] lanes) {
        FloatVector a00e = FloatVector.zero(F), a00o = a00e, a01e = a00e, a01o = a00e, a10e = a00e, a10o = a00e, a11e = a00e, a11o = a00e, a20e = a00e, a20o = a00e, a21e = a00e, a21o = a00e, a30e = a00e, a30o = a00e, a31e = a00e, a31o = a00e;
        for (int c = 0; c < columns; c += 2 * L) {  // c: first column of an even part
            int g = c >>> 5, b0 = at0 + g * BLOCK_BYTES + (c & 31), b1 = at1 + g * BLOCK_BYTES + (c & 31), x0 = r * columns + c, x1 = x0 + columns, x2 = x1 + columns, x3 = x2 + columns;
            FloatVector d0 = FloatVector.broadcast(F, d[g]), d1 = FloatVector.broadcast(F, d[groups + g]);
            FloatVector w0 = weights(q, b0, 0, d0), w1 = weights(q, b1, 0, d1);
            FloatVector v = FloatVector.fromArray(F, x, x0);
            a00e = w0.fma(v, a00e);
            a01e = w1.fma(v, a01e);
            v = FloatVector.fromArray(F, x, x1);
            a10e = w0.fma(v, a10e);
            a11e = w1.fma(v, a11e);
            v = FloatVector.fromArray(F, x, x2);
            a20e = w0.fma(v, a20e);
            a21e = w1.fma(v, a21e);
            v = FloatVector.fromArray(F, x, x3);
            a30e = w0.fma(v, a30e);
            a31e = w1.fma(v, a31e);
            w0 = weights(q, b0, L, d0);
            w1 = weights(q, b1, L, d1);
            v = FloatVector.fromArray(F, x, x0 + L);
            a00o = w0.fma(v, a00o);
            a01o = w1.fma(v, a01o);
            v = FloatVector.fromArray(F, x, x1 + L);
            a10o = w0.fma(v, a10o);
            a11o = w1.fma(v, a11o);
            v = FloatVector.fromArray(F, x, x2 + L);
            a20o = w0.fma(v, a20o);
            a21o = w1.fma(v, a21o);
            v = FloatVector.fromArray(F, x, x3 + L);
            a30o = w0.fma(v, a30o);
            a31o = w1.fma(v, a31o);
        }
        a00e.add(a00o).intoArray(lanes, 0);
        out[r * outRows + o0] = sumLanes(lanes);
        a01e.add(a01o).intoArray(lanes, 0);
        out[r * outRows + o1] = sumLanes(lanes);
        a10e.add(a10o).intoArray(lanes, 0);
        out[(r + 1) * outRows + o0] = sumLanes(lanes);
        a11e.add(a11o).intoArray(lanes, 0);
        out[(r + 1) * outRows + o1] = sumLanes(lanes);
        a20e.add(a20o).intoArray(lanes, 0);
        out[(r + 2) * outRows + o0] = sumLanes(lanes);
        a21e.add(a21o).intoArray(lanes, 0);
        out[(r + 2) * outRows + o1] = sumLanes(lanes);
        a30e.add(a30o).intoArray(lanes, 0);
        out[(r + 3) * outRows + o0] = sumLanes(lanes);
        a31e.add(a31o).intoArray(lanes, 0);
        out[(r + 3) * outRows + o1] = sumLanes(lanes);
    }

    private static void rows5(byte[] q, int at0, int at1, float[] d, int groups, int columns, float[] x, int r,
                          float[] out, int outRows, int o0, int o1, float[] lanes) {
        FloatVector a00e = FloatVector.zero(F), a00o = a00e, a01e = a00e, a01o = a00e, a10e = a00e, a10o = a00e, a11e = a00e, a11o = a00e, a20e = a00e, a20o = a00e, a21e = a00e, a21o = a00e, a30e = a00e, a30o = a00e, a31e = a00e, a31o = a00e, a40e = a00e, a40o = a00e, a41e = a00e, a41o = a00e;
        for (int c = 0; c < columns; c += 2 * L) {  // c: first column of an even part
            int g = c >>> 5, b0 = at0 + g * BLOCK_BYTES + (c & 31), b1 = at1 + g * BLOCK_BYTES + (c & 31), x0 = r * columns + c, x1 = x0 + columns, x2 = x1 + columns, x3 = x2 + columns, x4 = x3 + columns;
            FloatVector d0 = FloatVector.broadcast(F, d[g]), d1 = FloatVector.broadcast(F, d[groups + g]);
            FloatVector w0 = weights(q, b0, 0, d0), w1 = weights(q, b1, 0, d1);
            FloatVector v = FloatVector.fromArray(F, x, x0);
            a00e = w0.fma(v, a00e);
            a01e = w1.fma(v, a01e);
            v = FloatVector.fromArray(F, x, x1);
            a10e = w0.fma(v, a10e);
            a11e = w1.fma(v, a11e);
            v = FloatVector.fromArray(F, x, x2);
            a20e = w0.fma(v, a20e);
            a21e = w1.fma(v, a21e);
            v = FloatVector.fromArray(F, x, x3);
            a30e = w0.fma(v, a30e);
            a31e = w1.fma(v, a31e);
            v = FloatVector.fromArray(F, x, x4);
            a40e = w0.fma(v, a40e);
            a41e = w1.fma(v, a41e);
            w0 = weights(q, b0, L, d0);
            w1 = weights(q, b1, L, d1);
            v = FloatVector.fromArray(F, x, x0 + L);
            a00o = w0.fma(v, a00o);
            a01o = w1.fma(v, a01o);
            v = FloatVector.fromArray(F, x, x1 + L);
            a10o = w0.fma(v, a10o);
            a11o = w1.fma(v, a11o);
            v = FloatVector.fromArray(F, x, x2 + L);
            a20o = w0.fma(v, a20o);
            a21o = w1.fma(v, a21o);
            v = FloatVector.fromArray(F, x, x3 + L);
            a30o = w0.fma(v, a30o);
            a31o = w1.fma(v, a31o);
            v = FloatVector.fromArray(F, x, x4 + L);
            a40o = w0.fma(v, a40o);
            a41o = w1.fma(v, a41o);
        }
        a00e.add(a00o).intoArray(lanes, 0);
        out[r * outRows + o0] = sumLanes(lanes);
        a01e.add(a01o).intoArray(lanes, 0);
        out[r * outRows + o1] = sumLanes(lanes);
        a10e.add(a10o).intoArray(lanes, 0);
        out[(r + 1) * outRows + o0] = sumLanes(lanes);
        a11e.add(a11o).intoArray(lanes, 0);
        out[(r + 1) * outRows + o1] = sumLanes(lanes);
        a20e.add(a20o).intoArray(lanes, 0);
        out[(r + 2) * outRows + o0] = sumLanes(lanes);
        a21e.add(a21o).intoArray(lanes, 0);
        out[(r + 2) * outRows + o1] = sumLanes(lanes);
        a30e.add(a30o).intoArray(lanes, 0);
        out[(r + 3) * outRows + o0] = sumLanes(lanes);
        a31e.add(a31o).intoArray(lanes, 0);
        out[(r + 3) * outRows + o1] = sumLanes(lanes);
        a40e.add(a40o).intoArray(lanes, 0);
        out[(r + 4) * outRows + o0] = sumLanes(lanes);
        a41e.add(a41o).intoArray(lanes, 0);
        out[(r + 4) * outRows + o1] = sumLanes(lanes);
    }

}
