package dev.tandem.runtime.cpu;

import dev.tandem.model.quant.Q4KFormat;
import dev.tandem.model.quant.Q6KFormat;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Q4_K or Q6_K weight rows read straight from the mapped file against one activation row ({@link #q4k},
 * {@link #q6k}) or two sharing each widening ({@link #q4k2}, {@link #q6k2}): the decoding and short verification
 * shapes, where {@link MatmulBlockKernel}'s unpacking into scratch floats costs more than the dot products.
 *
 * <p>Same bits as {@link MatmulBlockKernel}: there, lane l of a super-block's sum collects the exact integer
 * products w_i * x_i (w_i = q_i * sub-block scale) of the elements i = l mod L, so any order of adding them
 * gives the same float. Here each sub-block's products q_i * x_i are summed first and then multiplied by its
 * scale, still exactly (all partial sums stay below 2^24), and the super-block sum is then scaled and
 * accumulated, and the min term subtracted, with the very operations of that kernel.
 *
 * <p>Quants are widened once per load: L bytes zero-extended to int lanes, both nibbles (and Q6_K's high
 * bits) taken with int shifts and masks, then converted to float. The loops are written without helper
 * methods that take or return vectors: where C2 declines to inline such a helper (its node budget runs out
 * in methods this size), it boxes the vectors and the kernel allocates on every call. The budget also bounds
 * unrolling by hand: q4k with its four sub-block pairs written out ran 1.7x faster alone but, compiled inside
 * a model's decode loop, left Vector API calls un-intrinsified and allocated (DecodeAllocationTest's Q4_K_M case).
 *
 * <p>q4k walks a super-block's four sub-block pairs two at a time with its min term summed in scalar code: one
 * loop of four trips carried some 60 instructions of loop set-up (pre-loop and range-check limits, recomputed
 * for every super-block), which cost it ~40 % (one core, cache-resident rows: 5.3 -> 8.3 GB/s, same bits).
 */
final class MatmulKQuantRow {
    static final VectorSpecies<Float> F = MatmulKernel.F;
    static final int L = F.length();
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
    /** L bytes: one load widens to one int vector. */
    private static final VectorSpecies<Byte> PART = L >= 8 ? VectorSpecies.of(byte.class, VectorShape.forBitSize(L * 8)) : null;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final ValueLayout.OfShort HALF = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(LE);
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(LE);

    private MatmulKQuantRow() {}

    /** Usable on this machine: the same vector widths as {@link MatmulQ80Direct}. */
    static boolean supported() { return MatmulQ80Direct.supported(); }

    private static float half(MemorySegment w, long at) { return Float.float16ToFloat(w.get(HALF, at)); }

    /*
     * A Q4_K super-block's 12 scale bytes as b (bytes 0..7) and c (bytes 8..11). KScales packs sub-block j's
     * 6-bit scale and min as: j < 4, scale = byte j & 63, min = byte j+4 & 63; j >= 4, the low 4 bits in the
     * nibbles of byte j+4 (scale low, min high) and the top 2 in the top bits of bytes j-4 (scale) and j (min).
     * Both are unpacked eight at a time, one byte each, with shifts and masks on the whole word.
     */

    /** The 8 sub-block scales, scale j in byte j. */
    private static long scales(long b, long c) {
        return (b & 0x3F3F3F3FL) | ((c & 0x0F0F0F0FL | (b >>> 2) & 0x30303030L) << 32);
    }

    /** The 8 sub-block mins, min j in byte j. */
    private static long mins(long b, long c) {
        return (b >>> 32 & 0x3F3F3F3FL) | ((c >>> 4 & 0x0F0F0F0FL | (b >>> 34) & 0x30303030L) << 32);
    }

    /** The exact integer sum over the 8 sub-blocks of min_j times the activation sum at xsum[at + j]. */
    private static int minDot(long b, long c, int[] xsum, int at) {
        IntVector m = (IntVector) LongVector.broadcast(LongVector.SPECIES_128, mins(b, c)).reinterpretAsBytes()
                .convertShape(VectorOperators.ZERO_EXTEND_B2I, IntVector.SPECIES_256, 0);
        return m.mul(IntVector.fromArray(IntVector.SPECIES_256, xsum, at)).reduceLanes(VectorOperators.ADD);
    }

    /**
     * Q4_K row at {@code at} with {@code columns} elements, dotted with activation row r (Q8_K values xq, scales
     * xs, sums per 32 elements xsum).
     */
    static float q4k(MemorySegment w, long at, int columns, float[] xq, float[] xs, int[] xsum, int r, float[] lanes) {
        int groups = columns / Q4KFormat.BLOCK;
        int xo = r * columns, xso = r * groups, sumo = r * (columns / 32);
        FloatVector a = FloatVector.zero(F);
        float minTerm = 0;
        for (int g = 0; g < groups; g++) {
            long b0 = at + (long) g * Q4KFormat.BLOCK_BYTES;  // linear in g, so C2 can hoist the segment's bounds checks
            float dw = half(w, b0), dmin = half(w, b0 + 2);
            long b = w.get(LONG, b0 + Q4KFormat.SCALES), c = w.get(INT, b0 + Q4KFormat.SCALES + 8) & 0xFFFFFFFFL;
            long sc = scales(b, c), mn = mins(b, c);
            int m = 0;
            for (int j = 0; j < 8; j++) m += (int) (mn >>> 8 * j & 0xFF) * xsum[sumo + 8 * g + j];
            // Sub-block sums scaled into two accumulators: the sums are exact integers, so splitting the chain
            // of FMAs (which would wait on each other's latency) changes no bit.
            FloatVector s = FloatVector.zero(F), t = s;
            int x = xo + Q4KFormat.BLOCK * g;
            for (int p = 0; p < 4; p += 2) {  // two 32-byte runs a trip: sub-blocks 2p, 2p+1 and 2p+2, 2p+3
                for (int k = 0; k < 2; k++) {
                    long qa = b0 + Q4KFormat.QS + 32 * (p + k);
                    int xa = x + 64 * (p + k);
                    FloatVector low = FloatVector.zero(F), high = low;
                    for (int i = 0; i < 32; i += L) {
                        IntVector q = (IntVector) ByteVector.fromMemorySegment(PART, w, qa + i, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                        low = ((FloatVector) q.and(15).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xq, xa + i), low);
                        high = ((FloatVector) q.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F, xq, xa + 32 + i), high);
                    }
                    s = low.fma(FloatVector.broadcast(F, (float) (int) (sc >>> 16 * (p + k) & 0xFF)), s);
                    t = high.fma(FloatVector.broadcast(F, (float) (int) (sc >>> 16 * (p + k) + 8 & 0xFF)), t);
                }
            }
            a = s.add(t).fma(FloatVector.broadcast(F, dw * xs[xso + g]), a);
            minTerm += dmin * xs[xso + g] * m;
        }
        a.intoArray(lanes, 0);
        return MatmulKernel.sumLanes(lanes) - minTerm;
    }

    /** Q6_K row at {@code at} with {@code columns} elements, dotted with activation row r (Q8_K values xq, scales xs). */
    static float q6k(MemorySegment w, long at, int columns, float[] xq, float[] xs, int r, float[] lanes) {
        int groups = columns / Q6KFormat.BLOCK;
        int xo = r * columns, xso = r * groups;
        FloatVector a = FloatVector.zero(F);
        for (int g = 0; g < groups; g++, at += Q6KFormat.BLOCK_BYTES) {
            // Two accumulators (exact integer sums, so the split changes no bit): one chain would wait on latency.
            FloatVector s = FloatVector.zero(F), u = s;
            for (int n = 0; n < 2; n++) {  // halves of 128 elements
                long ql = at + Q6KFormat.QL + 64 * n, qh = at + Q6KFormat.QH + 32 * n, scales = at + Q6KFormat.SCALES + 8 * n;
                int x = xo + Q6KFormat.BLOCK * g + 128 * n;
                for (int i = 0; i < 32; i += L) {
                    // Elements 32q+i of quarter q: low 4 bits are nibble q>>1 of ql[32*(q&1) + i], high 2 bits are
                    // bits 2q of qh[i]; each run of L lies in the 16-element sub-block i/16 + 2q, whose scale
                    // multiplies its exact products. The three loads serve all four quarters; no helper methods
                    // here, so that C2 inlines all of it (a helper that is not inlined boxes its vectors).
                    IntVector q0 = ((IntVector) ByteVector.fromMemorySegment(PART, w, ql + i, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0));
                    IntVector q1 = ((IntVector) ByteVector.fromMemorySegment(PART, w, ql + 32 + i, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0));
                    IntVector h = ((IntVector) ByteVector.fromMemorySegment(PART, w, qh + i, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0));
                    long sc = scales + i / 16;
                    IntVector v = q0.and(15).or(h.and(3).lanewise(VectorOperators.LSHL, 4)).sub(32);
                    FloatVector t = ((FloatVector) v.convert(VectorOperators.I2F, 0)).mul(FloatVector.fromArray(F, xq, x + i));
                    s = t.fma(FloatVector.broadcast(F, (float) w.get(ValueLayout.JAVA_BYTE, sc)), s);
                    v = q1.and(15).or(h.and(12).lanewise(VectorOperators.LSHL, 2)).sub(32);
                    t = ((FloatVector) v.convert(VectorOperators.I2F, 0)).mul(FloatVector.fromArray(F, xq, x + 32 + i));
                    u = t.fma(FloatVector.broadcast(F, (float) w.get(ValueLayout.JAVA_BYTE, sc + 2)), u);
                    v = q0.lanewise(VectorOperators.LSHR, 4).or(h.and(48)).sub(32);
                    t = ((FloatVector) v.convert(VectorOperators.I2F, 0)).mul(FloatVector.fromArray(F, xq, x + 64 + i));
                    s = t.fma(FloatVector.broadcast(F, (float) w.get(ValueLayout.JAVA_BYTE, sc + 4)), s);
                    v = q1.lanewise(VectorOperators.LSHR, 4).or(h.lanewise(VectorOperators.LSHR, 2).and(48)).sub(32);
                    t = ((FloatVector) v.convert(VectorOperators.I2F, 0)).mul(FloatVector.fromArray(F, xq, x + 96 + i));
                    u = t.fma(FloatVector.broadcast(F, (float) w.get(ValueLayout.JAVA_BYTE, sc + 6)), u);
                }
            }
            a = s.add(u).fma(FloatVector.broadcast(F, half(w, at + Q6KFormat.D) * xs[xso + g]), a);
        }
        a.intoArray(lanes, 0);
        return MatmulKernel.sumLanes(lanes);
    }

    /**
     * {@link #q4k} for activation rows r and r+1 at once (out[r*outRows + o] and out[(r+1)*outRows + o]), sharing
     * the widening of each quant: the same operations per row, so the same bits.
     */
    static void q4k2(MemorySegment w, long at, int columns, float[] xq, float[] xs, int[] xsum, int r,
                     float[] out, int outRows, int o, float[] lanes) {
        int groups = columns / Q4KFormat.BLOCK;
        int xo0 = r * columns, xo1 = xo0 + columns, xso0 = r * groups, xso1 = xso0 + groups, sumo0 = r * (columns / 32), sumo1 = sumo0 + columns / 32;
        FloatVector a0 = FloatVector.zero(F), a1 = a0;
        float minTerm0 = 0, minTerm1 = 0;
        for (int g = 0; g < groups; g++, at += Q4KFormat.BLOCK_BYTES) {
            float dw = half(w, at), dmin = half(w, at + 2);
            long b = w.get(LONG, at + Q4KFormat.SCALES), c = w.get(INT, at + Q4KFormat.SCALES + 8) & 0xFFFFFFFFL;
            long sc = scales(b, c);
            int m0 = minDot(b, c, xsum, sumo0 + 8 * g), m1 = minDot(b, c, xsum, sumo1 + 8 * g);
            FloatVector s0 = FloatVector.zero(F), t0 = s0, s1 = s0, t1 = s0;
            int x0 = xo0 + Q4KFormat.BLOCK * g, x1 = xo1 + Q4KFormat.BLOCK * g;
            for (int p = 0; p < 4; p++) {
                int lowScale = (int) (sc >>> (16 * p) & 0xFF), highScale = (int) (sc >>> (16 * p + 8) & 0xFF);  // sub-blocks 2p, 2p+1
                FloatVector low0 = FloatVector.zero(F), high0 = low0, low1 = low0, high1 = low0;
                for (int i = 0; i < 32; i += L) {
                    IntVector q = (IntVector) ByteVector.fromMemorySegment(PART, w, at + Q4KFormat.QS + 32 * p + i, LE)
                            .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                    FloatVector lq = (FloatVector) q.and(15).convert(VectorOperators.I2F, 0);
                    FloatVector hq = (FloatVector) q.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0);
                    int e = 64 * p + i;
                    low0 = lq.fma(FloatVector.fromArray(F, xq, x0 + e), low0);
                    high0 = hq.fma(FloatVector.fromArray(F, xq, x0 + e + 32), high0);
                    low1 = lq.fma(FloatVector.fromArray(F, xq, x1 + e), low1);
                    high1 = hq.fma(FloatVector.fromArray(F, xq, x1 + e + 32), high1);
                }
                FloatVector ls = FloatVector.broadcast(F, (float) lowScale), hs = FloatVector.broadcast(F, (float) highScale);
                s0 = low0.fma(ls, s0);
                t0 = high0.fma(hs, t0);
                s1 = low1.fma(ls, s1);
                t1 = high1.fma(hs, t1);
            }
            a0 = s0.add(t0).fma(FloatVector.broadcast(F, dw * xs[xso0 + g]), a0);
            a1 = s1.add(t1).fma(FloatVector.broadcast(F, dw * xs[xso1 + g]), a1);
            minTerm0 += dmin * xs[xso0 + g] * m0;
            minTerm1 += dmin * xs[xso1 + g] * m1;
        }
        a0.intoArray(lanes, 0);
        out[r * outRows + o] = MatmulKernel.sumLanes(lanes) - minTerm0;
        a1.intoArray(lanes, 0);
        out[(r + 1) * outRows + o] = MatmulKernel.sumLanes(lanes) - minTerm1;
    }

    /** {@link #q6k} for activation rows r and r+1 at once, sharing the widening of each quant (same bits). */
    static void q6k2(MemorySegment w, long at, int columns, float[] xq, float[] xs, int r, float[] out, int outRows, int o, float[] lanes) {
        int groups = columns / Q6KFormat.BLOCK;
        int xo0 = r * columns, xo1 = xo0 + columns, xso0 = r * groups, xso1 = xso0 + groups;
        FloatVector a0 = FloatVector.zero(F), a1 = a0;
        for (int g = 0; g < groups; g++, at += Q6KFormat.BLOCK_BYTES) {
            FloatVector s0 = FloatVector.zero(F), u0 = s0, s1 = s0, u1 = s0;
            for (int n = 0; n < 2; n++) {
                long ql = at + Q6KFormat.QL + 64 * n, qh = at + Q6KFormat.QH + 32 * n, scales = at + Q6KFormat.SCALES + 8 * n;
                int x0 = xo0 + Q6KFormat.BLOCK * g + 128 * n, x1 = xo1 + Q6KFormat.BLOCK * g + 128 * n;
                for (int i = 0; i < 32; i += L) {
                    IntVector q0 = ((IntVector) ByteVector.fromMemorySegment(PART, w, ql + i, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0));
                    IntVector q1 = ((IntVector) ByteVector.fromMemorySegment(PART, w, ql + 32 + i, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0));
                    IntVector h = ((IntVector) ByteVector.fromMemorySegment(PART, w, qh + i, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0));
                    long sc = scales + i / 16;
                    FloatVector f = (FloatVector) q0.and(15).or(h.and(3).lanewise(VectorOperators.LSHL, 4)).sub(32).convert(VectorOperators.I2F, 0);
                    FloatVector scale = FloatVector.broadcast(F, (float) w.get(ValueLayout.JAVA_BYTE, sc));
                    s0 = f.mul(FloatVector.fromArray(F, xq, x0 + i)).fma(scale, s0);
                    s1 = f.mul(FloatVector.fromArray(F, xq, x1 + i)).fma(scale, s1);
                    f = (FloatVector) q1.and(15).or(h.and(12).lanewise(VectorOperators.LSHL, 2)).sub(32).convert(VectorOperators.I2F, 0);
                    scale = FloatVector.broadcast(F, (float) w.get(ValueLayout.JAVA_BYTE, sc + 2));
                    u0 = f.mul(FloatVector.fromArray(F, xq, x0 + 32 + i)).fma(scale, u0);
                    u1 = f.mul(FloatVector.fromArray(F, xq, x1 + 32 + i)).fma(scale, u1);
                    f = (FloatVector) q0.lanewise(VectorOperators.LSHR, 4).or(h.and(48)).sub(32).convert(VectorOperators.I2F, 0);
                    scale = FloatVector.broadcast(F, (float) w.get(ValueLayout.JAVA_BYTE, sc + 4));
                    s0 = f.mul(FloatVector.fromArray(F, xq, x0 + 64 + i)).fma(scale, s0);
                    s1 = f.mul(FloatVector.fromArray(F, xq, x1 + 64 + i)).fma(scale, s1);
                    f = (FloatVector) q1.lanewise(VectorOperators.LSHR, 4).or(h.lanewise(VectorOperators.LSHR, 2).and(48)).sub(32).convert(VectorOperators.I2F, 0);
                    scale = FloatVector.broadcast(F, (float) w.get(ValueLayout.JAVA_BYTE, sc + 6));
                    u0 = f.mul(FloatVector.fromArray(F, xq, x0 + 96 + i)).fma(scale, u0);
                    u1 = f.mul(FloatVector.fromArray(F, xq, x1 + 96 + i)).fma(scale, u1);
                }
            }
            float d = half(w, at + Q6KFormat.D);
            a0 = s0.add(u0).fma(FloatVector.broadcast(F, d * xs[xso0 + g]), a0);
            a1 = s1.add(u1).fma(FloatVector.broadcast(F, d * xs[xso1 + g]), a1);
        }
        a0.intoArray(lanes, 0);
        out[r * outRows + o] = MatmulKernel.sumLanes(lanes);
        a1.intoArray(lanes, 0);
        out[(r + 1) * outRows + o] = MatmulKernel.sumLanes(lanes);
    }
}
