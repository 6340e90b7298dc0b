package dev.tandem.runtime.cpu;

import dev.tandem.model.TensorType;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Q8_0 weights times Q8_0 activations without an unpacking pass, read straight from the mapped file: each
 * 32-weight block is widened to floats in registers and used at once for up to {@link #MAX_ROWS} activation
 * rows, so a weight row is read from memory once per pass and the widening is shared by every row of the
 * batch. Every pass, decoding's one row included (unless its rows are shorter than {@link #PAIRED_COLUMNS}),
 * takes two weight rows at a time, from the two halves of the range so that each is a sequential stream: each activation load then serves two FMAs, which halves the
 * activation traffic (one activation row of 8192 floats, 32 KB, did not stay in L1 beside the streaming
 * weights: one weight row at a time ran at 9.8-12.4 GB/s per core there against 17 in pairs).
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
    static final int BLOCK_BYTES = TensorType.Q8_0.blockBytes();
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final ValueLayout.OfShort SCALE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);
    /** Activation rows per register block: 4 accumulators each, within 32 vector registers (16 for 8 lanes). */
    static final int MAX_ROWS = L == 16 ? 5 : 2;
    /**
     * One-row passes over rows at least this long take weight rows in pairs; shorter rows (a small model, all in
     * cache) one at a time, which decoded the 8 MB KJV model faster on one thread (about 1,550 against 1,220 tok/s).
     */
    static final int PAIRED_COLUMNS = 1024;

    private MatmulQ80Direct() {}

    /** Usable on this machine: a float vector of 8 or 16 lanes. */
    static boolean supported() { return L == 8 || L == 16; }

    /** L weights from element e of the block at blockAt, times the block's scale d: the contract's w'. */
    private static FloatVector weights(MemorySegment w, long blockAt, int e, FloatVector d) {
        return ((FloatVector) ByteVector.fromMemorySegment(PART, w, blockAt + 2 + e, LE).convertShape(VectorOperators.B2F, F, 0)).mul(d);
    }

    /** The block's scale d_w (f16 at the block's start), broadcast. */
    private static FloatVector scale(MemorySegment w, long blockAt) {
        return FloatVector.broadcast(F, Float.float16ToFloat(w.get(SCALE, blockAt)));
    }

    /**
     * out[r*outRows + o] for weight rows o in [first, end) and every activation row r < batch; x holds the
     * scaled activations x'. Weight rows are read in pairs straight from the mapped file: each block's bytes
     * are loaded once per register block of activation rows (from memory for the first, from L1 after).
     */
    static void multiply(MemorySegment w, long rowBytes, int columns, int first, int end,
                         float[] x, int batch, float[] out, int outRows, float[] lanes) {
        // Pairs (o, o + half), not (o, o + 1): two weight rows read in lock-step must be two sequential streams
        // in different pages for the hardware prefetchers to follow them. Adjacent rows, one row length apart,
        // interleave their cache lines within the same pages, which the prefetchers here did not follow: a pass
        // then waited on memory (one core, 200 MB of weights, 2 activation rows: 42 ms against 22).
        int half = (end - first + 1) / 2;
        if (batch == 1 && columns < PAIRED_COLUMNS) {  // decoding a small model: one weight row at a time
            for (int o = first; o < end; o++) row(w, o * rowBytes, columns, x, out, o, lanes);
            return;
        }
        if (batch == 1) {  // decoding: its own loop, apart from the batch shapes
            for (int o = first; o < first + half; o++) {
                int o1 = o + half < end ? o + half : o;
                rows1(w, o * rowBytes, o1 * rowBytes, columns, x, 0, out, outRows, o, o1, lanes);
            }
            return;
        }
        for (int o = first; o < first + half; o++) {
            int o1 = o + half < end ? o + half : o; // an odd count's middle row is paired with itself
            long at0 = o * rowBytes, at1 = o1 * rowBytes;
            for (int r = 0; r < batch; ) {
                int n = Math.min(MAX_ROWS, batch - r);
                switch (n) {
                    case 1 -> rows1(w, at0, at1, columns, x, r, out, outRows, o, o1, lanes);
                    case 2 -> rows2(w, at0, at1, columns, x, r, out, outRows, o, o1, lanes);
                    case 3 -> rows3(w, at0, at1, columns, x, r, out, outRows, o, o1, lanes);
                    case 4 -> rows4(w, at0, at1, columns, x, r, out, outRows, o, o1, lanes);
                    default -> rows5(w, at0, at1, columns, x, r, out, outRows, o, o1, lanes);
                }
                r += n;
            }
        }
    }

    /** Activation row 0 against weight row o (at byte at), for rows too short to need {@link #rows1}'s pairs. */
    private static void row(MemorySegment q, long at, int columns, float[] x, float[] out, int o, float[] lanes) {
        FloatVector a0e = FloatVector.zero(F), a0o = a0e;
        long b = at;
        for (int c = 0; c < columns; c += 32, b += BLOCK_BYTES) {  // c: a block's first column, b: its bytes
            FloatVector d = scale(q, b);
            for (int e = 0; e < 32; e += 2 * L) {  // e: an even part of the block
                FloatVector w = weights(q, b, e, d);
                a0e = w.fma(FloatVector.fromArray(F, x, c + e), a0e);
                w = weights(q, b, e + L, d);
                a0o = w.fma(FloatVector.fromArray(F, x, c + e + L), a0o);
            }
        }
        a0e.add(a0o).intoArray(lanes, 0);
        out[o] = MatmulKernel.sumLanes(lanes);
    }

    // rowsN: activation rows r..r+N-1 against weight rows o0 and o1, which share each activation load (a
    // zmm load per FMA would saturate the load port). Written out per N so that every accumulator is a local
    // C2 can keep in a register; accumulator aIWP is activation row r+I, weight row oW, parity P.

    private static void rows1(MemorySegment q, long at0, long at1, int columns, float[] x, int r,
                              float[] out, int outRows, int o0, int o1, float[] lanes) {
        FloatVector a00e = FloatVector.zero(F), a00o = a00e, a01e = a00e, a01o = a00e;
        long b0 = at0, b1 = at1;
        for (int c = 0; c < columns; c += 32, b0 += BLOCK_BYTES, b1 += BLOCK_BYTES) {  // c: a block's first column
            FloatVector d0 = scale(q, b0), d1 = scale(q, b1);
            for (int e = 0; e < 32; e += 2 * L) {  // e: an even part of the block
                int x0 = r * columns + c + e;
                FloatVector w0 = weights(q, b0, e, d0), w1 = weights(q, b1, e, d1), v;
                v = FloatVector.fromArray(F, x, x0);
                a00e = w0.fma(v, a00e);
                a01e = w1.fma(v, a01e);
                w0 = weights(q, b0, e + L, d0);
                w1 = weights(q, b1, e + L, d1);
                v = FloatVector.fromArray(F, x, x0 + L);
                a00o = w0.fma(v, a00o);
                a01o = w1.fma(v, a01o);
            }
        }
        a00e.add(a00o).intoArray(lanes, 0);
        out[r * outRows + o0] = MatmulKernel.sumLanes(lanes);
        a01e.add(a01o).intoArray(lanes, 0);
        out[r * outRows + o1] = MatmulKernel.sumLanes(lanes);
    }

    private static void rows2(MemorySegment q, long at0, long at1, int columns, float[] x, int r,
                              float[] out, int outRows, int o0, int o1, float[] lanes) {
        FloatVector a00e = FloatVector.zero(F), a00o = a00e, a01e = a00e, a01o = a00e, a10e = a00e, a10o = a00e, a11e = a00e, a11o = a00e;
        long b0 = at0, b1 = at1;
        for (int c = 0; c < columns; c += 32, b0 += BLOCK_BYTES, b1 += BLOCK_BYTES) {  // c: a block's first column
            FloatVector d0 = scale(q, b0), d1 = scale(q, b1);
            for (int e = 0; e < 32; e += 2 * L) {  // e: an even part of the block
                int x0 = r * columns + c + e, x1 = x0 + columns;
                FloatVector w0 = weights(q, b0, e, d0), w1 = weights(q, b1, e, d1), v;
                v = FloatVector.fromArray(F, x, x0);
                a00e = w0.fma(v, a00e);
                a01e = w1.fma(v, a01e);
                v = FloatVector.fromArray(F, x, x1);
                a10e = w0.fma(v, a10e);
                a11e = w1.fma(v, a11e);
                w0 = weights(q, b0, e + L, d0);
                w1 = weights(q, b1, e + L, d1);
                v = FloatVector.fromArray(F, x, x0 + L);
                a00o = w0.fma(v, a00o);
                a01o = w1.fma(v, a01o);
                v = FloatVector.fromArray(F, x, x1 + L);
                a10o = w0.fma(v, a10o);
                a11o = w1.fma(v, a11o);
            }
        }
        a00e.add(a00o).intoArray(lanes, 0);
        out[r * outRows + o0] = MatmulKernel.sumLanes(lanes);
        a01e.add(a01o).intoArray(lanes, 0);
        out[r * outRows + o1] = MatmulKernel.sumLanes(lanes);
        a10e.add(a10o).intoArray(lanes, 0);
        out[(r + 1) * outRows + o0] = MatmulKernel.sumLanes(lanes);
        a11e.add(a11o).intoArray(lanes, 0);
        out[(r + 1) * outRows + o1] = MatmulKernel.sumLanes(lanes);
    }

    private static void rows3(MemorySegment q, long at0, long at1, int columns, float[] x, int r,
                              float[] out, int outRows, int o0, int o1, float[] lanes) {
        FloatVector a00e = FloatVector.zero(F), a00o = a00e, a01e = a00e, a01o = a00e, a10e = a00e, a10o = a00e, a11e = a00e, a11o = a00e, a20e = a00e, a20o = a00e, a21e = a00e, a21o = a00e;
        long b0 = at0, b1 = at1;
        for (int c = 0; c < columns; c += 32, b0 += BLOCK_BYTES, b1 += BLOCK_BYTES) {  // c: a block's first column
            FloatVector d0 = scale(q, b0), d1 = scale(q, b1);
            for (int e = 0; e < 32; e += 2 * L) {  // e: an even part of the block
                int x0 = r * columns + c + e, x1 = x0 + columns, x2 = x1 + columns;
                FloatVector w0 = weights(q, b0, e, d0), w1 = weights(q, b1, e, d1), v;
                v = FloatVector.fromArray(F, x, x0);
                a00e = w0.fma(v, a00e);
                a01e = w1.fma(v, a01e);
                v = FloatVector.fromArray(F, x, x1);
                a10e = w0.fma(v, a10e);
                a11e = w1.fma(v, a11e);
                v = FloatVector.fromArray(F, x, x2);
                a20e = w0.fma(v, a20e);
                a21e = w1.fma(v, a21e);
                w0 = weights(q, b0, e + L, d0);
                w1 = weights(q, b1, e + L, d1);
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
        }
        a00e.add(a00o).intoArray(lanes, 0);
        out[r * outRows + o0] = MatmulKernel.sumLanes(lanes);
        a01e.add(a01o).intoArray(lanes, 0);
        out[r * outRows + o1] = MatmulKernel.sumLanes(lanes);
        a10e.add(a10o).intoArray(lanes, 0);
        out[(r + 1) * outRows + o0] = MatmulKernel.sumLanes(lanes);
        a11e.add(a11o).intoArray(lanes, 0);
        out[(r + 1) * outRows + o1] = MatmulKernel.sumLanes(lanes);
        a20e.add(a20o).intoArray(lanes, 0);
        out[(r + 2) * outRows + o0] = MatmulKernel.sumLanes(lanes);
        a21e.add(a21o).intoArray(lanes, 0);
        out[(r + 2) * outRows + o1] = MatmulKernel.sumLanes(lanes);
    }

    private static void rows4(MemorySegment q, long at0, long at1, int columns, float[] x, int r,
                              float[] out, int outRows, int o0, int o1, float[] lanes) {
        FloatVector a00e = FloatVector.zero(F), a00o = a00e, a01e = a00e, a01o = a00e, a10e = a00e, a10o = a00e, a11e = a00e, a11o = a00e, a20e = a00e, a20o = a00e, a21e = a00e, a21o = a00e, a30e = a00e, a30o = a00e, a31e = a00e, a31o = a00e;
        long b0 = at0, b1 = at1;
        for (int c = 0; c < columns; c += 32, b0 += BLOCK_BYTES, b1 += BLOCK_BYTES) {  // c: a block's first column
            FloatVector d0 = scale(q, b0), d1 = scale(q, b1);
            for (int e = 0; e < 32; e += 2 * L) {  // e: an even part of the block
                int x0 = r * columns + c + e, x1 = x0 + columns, x2 = x1 + columns, x3 = x2 + columns;
                FloatVector w0 = weights(q, b0, e, d0), w1 = weights(q, b1, e, d1), v;
                v = FloatVector.fromArray(F, x, x0);
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
                w0 = weights(q, b0, e + L, d0);
                w1 = weights(q, b1, e + L, d1);
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
        }
        a00e.add(a00o).intoArray(lanes, 0);
        out[r * outRows + o0] = MatmulKernel.sumLanes(lanes);
        a01e.add(a01o).intoArray(lanes, 0);
        out[r * outRows + o1] = MatmulKernel.sumLanes(lanes);
        a10e.add(a10o).intoArray(lanes, 0);
        out[(r + 1) * outRows + o0] = MatmulKernel.sumLanes(lanes);
        a11e.add(a11o).intoArray(lanes, 0);
        out[(r + 1) * outRows + o1] = MatmulKernel.sumLanes(lanes);
        a20e.add(a20o).intoArray(lanes, 0);
        out[(r + 2) * outRows + o0] = MatmulKernel.sumLanes(lanes);
        a21e.add(a21o).intoArray(lanes, 0);
        out[(r + 2) * outRows + o1] = MatmulKernel.sumLanes(lanes);
        a30e.add(a30o).intoArray(lanes, 0);
        out[(r + 3) * outRows + o0] = MatmulKernel.sumLanes(lanes);
        a31e.add(a31o).intoArray(lanes, 0);
        out[(r + 3) * outRows + o1] = MatmulKernel.sumLanes(lanes);
    }

    private static void rows5(MemorySegment q, long at0, long at1, int columns, float[] x, int r,
                              float[] out, int outRows, int o0, int o1, float[] lanes) {
        FloatVector a00e = FloatVector.zero(F), a00o = a00e, a01e = a00e, a01o = a00e, a10e = a00e, a10o = a00e, a11e = a00e, a11o = a00e, a20e = a00e, a20o = a00e, a21e = a00e, a21o = a00e, a30e = a00e, a30o = a00e, a31e = a00e, a31o = a00e, a40e = a00e, a40o = a00e, a41e = a00e, a41o = a00e;
        long b0 = at0, b1 = at1;
        for (int c = 0; c < columns; c += 32, b0 += BLOCK_BYTES, b1 += BLOCK_BYTES) {  // c: a block's first column
            FloatVector d0 = scale(q, b0), d1 = scale(q, b1);
            for (int e = 0; e < 32; e += 2 * L) {  // e: an even part of the block
                int x0 = r * columns + c + e, x1 = x0 + columns, x2 = x1 + columns, x3 = x2 + columns, x4 = x3 + columns;
                FloatVector w0 = weights(q, b0, e, d0), w1 = weights(q, b1, e, d1), v;
                v = FloatVector.fromArray(F, x, x0);
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
                w0 = weights(q, b0, e + L, d0);
                w1 = weights(q, b1, e + L, d1);
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
        }
        a00e.add(a00o).intoArray(lanes, 0);
        out[r * outRows + o0] = MatmulKernel.sumLanes(lanes);
        a01e.add(a01o).intoArray(lanes, 0);
        out[r * outRows + o1] = MatmulKernel.sumLanes(lanes);
        a10e.add(a10o).intoArray(lanes, 0);
        out[(r + 1) * outRows + o0] = MatmulKernel.sumLanes(lanes);
        a11e.add(a11o).intoArray(lanes, 0);
        out[(r + 1) * outRows + o1] = MatmulKernel.sumLanes(lanes);
        a20e.add(a20o).intoArray(lanes, 0);
        out[(r + 2) * outRows + o0] = MatmulKernel.sumLanes(lanes);
        a21e.add(a21o).intoArray(lanes, 0);
        out[(r + 2) * outRows + o1] = MatmulKernel.sumLanes(lanes);
        a30e.add(a30o).intoArray(lanes, 0);
        out[(r + 3) * outRows + o0] = MatmulKernel.sumLanes(lanes);
        a31e.add(a31o).intoArray(lanes, 0);
        out[(r + 3) * outRows + o1] = MatmulKernel.sumLanes(lanes);
        a40e.add(a40o).intoArray(lanes, 0);
        out[(r + 4) * outRows + o0] = MatmulKernel.sumLanes(lanes);
        a41e.add(a41o).intoArray(lanes, 0);
        out[(r + 4) * outRows + o1] = MatmulKernel.sumLanes(lanes);
    }
}
