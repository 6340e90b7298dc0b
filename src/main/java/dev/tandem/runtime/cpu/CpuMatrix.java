package dev.tandem.runtime.cpu;

import dev.tandem.model.Tensor;
import dev.tandem.model.TensorType;

import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/** PLACEHOLDER (replaced by the quant branch): scalar F32/F16/BF16 only. */
public final class CpuMatrix {
    private final Tensor t;
    private CpuMatrix(Tensor t) { this.t = t; }
    public static CpuMatrix of(Tensor t) { return new CpuMatrix(t); }
    public int rows() { return t.rows(); }
    public int columns() { return t.columns(); }
    public TensorType type() { return t.type(); }
    private float[][] cache;
    public void multiply(Activations x, float[] out, WorkerPool pool) {
        if (cache == null) { cache = new float[rows()][columns()]; for (int o = 0; o < rows(); o++) copyRow(o, cache[o], 0); }
        for (int o = 0; o < rows(); o++) {
            float[] w = cache[o];
            for (int r = 0; r < x.rows; r++) {
                float s = 0;
                for (int i = 0; i < w.length; i++) s += w[i] * x.x[r * x.columns + i];
                out[r * rows() + o] = s;
            }
        }
    }
    public void copyRow(int row, float[] dst, int offset) {
        var seg = t.row(row);
        for (int i = 0; i < columns(); i++) {
            dst[offset + i] = switch (t.type()) {
                case F32 -> seg.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), i);
                case BF16 -> Float.intBitsToFloat(seg.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), i) << 16);
                case F16 -> Float.float16ToFloat(seg.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), i));
                default -> throw new UnsupportedOperationException(t.type().toString());
            };
        }
    }
}
