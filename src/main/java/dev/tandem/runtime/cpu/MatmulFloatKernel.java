package dev.tandem.runtime.cpu;

import dev.tandem.model.Tensor;
import dev.tandem.model.TensorType;
import dev.tandem.model.quant.LittleEndian;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * F32, F16 and BF16 weights against F32 activations: rows are converted to floats in the scratch (or, for F32
 * and BF16 against one activation row, read straight from the file by {@link #dotRow}), then each lane
 * accumulates w*x with FMA; a scalar FMA tail handles row lengths that are not a lane multiple.
 */
final class MatmulFloatKernel extends MatmulKernel {
    private static final VectorSpecies<Short> HALVES = VectorSpecies.of(short.class, VectorShape.forBitSize(L * 16));
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
    private final int upper = F.loopBound(columns);

    MatmulFloatKernel(Tensor tensor) {
        super(tensor);
    }

    @Override
    void prepare(Activations x, WorkerPool pool) {}

    @Override
    void unpack(int row, MatmulScratch s, int slot) {
        long at = row * rowBytes;
        float[] w = s.weights;
        int wo = slot * columns;
        switch (tensor.type()) {
            case F32 -> java.lang.foreign.MemorySegment.copy(data, LittleEndian.FLOAT, at, w, wo, columns);
            case F16 -> {
                short[] h = s.halves;
                java.lang.foreign.MemorySegment.copy(data, LittleEndian.SHORT, at, h, 0, columns);
                for (int i = 0; i < columns; i++) w[wo + i] = Float.float16ToFloat(h[i]); // vectorised by C2 (vcvtph2ps)
            }
            case BF16 -> {
                int i = 0;
                for (; i < upper; i += L) bf16(at + 2L * i).intoArray(w, wo + i);
                for (; i < columns; i++) w[wo + i] = bf16Value(at + 2L * i);
            }
            default -> throw new IllegalStateException(tensor.type() + " is not a float type");
        }
    }

    @Override
    void dot(MatmulScratch s, int n, Activations x, int r, float[] out, int outAt) {
        float[] w = s.weights, xv = x.values();
        int xo = r * columns;
        if (n == TILE) {
            int w1 = columns, w2 = 2 * columns, w3 = 3 * columns;
            FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
            for (int i = 0; i < upper; i += L) {
                FloatVector xx = FloatVector.fromArray(F, xv, xo + i);
                a0 = FloatVector.fromArray(F, w, i).fma(xx, a0);
                a1 = FloatVector.fromArray(F, w, w1 + i).fma(xx, a1);
                a2 = FloatVector.fromArray(F, w, w2 + i).fma(xx, a2);
                a3 = FloatVector.fromArray(F, w, w3 + i).fma(xx, a3);
            }
            out[outAt] = tail(sumLanes(a0, s.lanes), w, 0, xv, xo);
            out[outAt + 1] = tail(sumLanes(a1, s.lanes), w, w1, xv, xo);
            out[outAt + 2] = tail(sumLanes(a2, s.lanes), w, w2, xv, xo);
            out[outAt + 3] = tail(sumLanes(a3, s.lanes), w, w3, xv, xo);
            return;
        }
        for (int k = 0; k < n; k++) {
            int wo = k * columns;
            FloatVector a = FloatVector.zero(F);
            for (int i = 0; i < upper; i += L) {
                a = FloatVector.fromArray(F, w, wo + i).fma(FloatVector.fromArray(F, xv, xo + i), a);
            }
            out[outAt + k] = tail(sumLanes(a, s.lanes), w, wo, xv, xo);
        }
    }

    /** Reads F32 and BF16 rows straight from the file for one activation row ({@link #dotRow}); F16 unpacks. */
    boolean readsRowsDirectly() { return tensor.type() == TensorType.F32 || tensor.type() == TensorType.BF16; }

    /**
     * Weight row {@code row} dotted with activation row {@code r}, read straight from the mapped file: the
     * operations of {@link #dot} (one accumulator, lanes summed in order, scalar FMA tail), so the same bits.
     * BF16 widens by moving its 16 bits to the top of a float.
     */
    float dotRow(int row, Activations x, int r, float[] lanes) {
        float[] xv = x.values();
        int xo = r * columns;
        long at = row * rowBytes;
        FloatVector a = FloatVector.zero(F);
        float sum;
        if (tensor.type() == TensorType.F32) {
            for (int i = 0; i < upper; i += L) {
                a = FloatVector.fromMemorySegment(F, data, at + 4L * i, LE).fma(FloatVector.fromArray(F, xv, xo + i), a);
            }
            sum = sumLanes(a, lanes);
            for (int i = upper; i < columns; i++) sum = Math.fma(data.get(LittleEndian.FLOAT, at + 4L * i), xv[xo + i], sum);
        } else {
            for (int i = 0; i < upper; i += L) {
                a = bf16(at + 2L * i).fma(FloatVector.fromArray(F, xv, xo + i), a);
            }
            sum = sumLanes(a, lanes);
            for (int i = upper; i < columns; i++) sum = Math.fma(bf16Value(at + 2L * i), xv[xo + i], sum);
        }
        return sum;
    }

    /** L BF16 weights at byte {@code at} as floats: each one's 16 bits moved to the top of a float. */
    private FloatVector bf16(long at) {
        return ((IntVector) ShortVector.fromMemorySegment(HALVES, data, at, LE).convertShape(VectorOperators.S2I, I, 0))
                .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
    }

    /** The BF16 weight at byte {@code at}, as {@link #bf16} widens each lane. */
    private float bf16Value(long at) { return Float.intBitsToFloat(data.get(LittleEndian.SHORT, at) << 16); }

    private float tail(float sum, float[] w, int wo, float[] xv, int xo) {
        for (int i = upper; i < columns; i++) sum = Math.fma(w[wo + i], xv[xo + i], sum);
        return sum;
    }
}
