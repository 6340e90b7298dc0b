package dev.tandem.runtime.cpu;

import dev.tandem.model.Tensor;
import dev.tandem.model.TensorType;

import java.lang.foreign.MemorySegment;
import java.util.function.IntConsumer;

/**
 * A weight matrix prepared for multiplication on the CPU. Wraps a {@link Tensor} view; weights are not
 * copied.
 *
 * <p>Weights are read once per pass: each task takes a fixed chunk of {@link #CHUNK} output rows. Where a
 * direct kernel exists it reads them straight from the mapped file (Q8_0 for any batch, {@link MatmulQ80Direct};
 * Q4_K and Q6_K up to {@link #K_QUANT_DIRECT_ROWS} rows, {@link MatmulKQuantRow}; F32 and BF16 for one row,
 * {@link MatmulFloatKernel#dotRow}). Otherwise the task unpacks them {@link MatmulKernel#TILE} at a time into
 * per-thread scratch and dots each tile with every activation row (in groups of {@link #ROW_GROUP} rows so
 * that the activations stay in cache). Both ways compute each output with the same operations, so every
 * output is the same whatever the batch, the thread or the chunk it falls in ({@code DirectKernelTest}).
 *
 * <p>One multiply at a time per matrix (multiply is synchronized). The pool's threads read the weights, so
 * the tensor's segment must not be confined to one thread (map files with a shared or global arena).
 */
public final class CpuMatrix {
    /** Output rows per task: long enough runs of rows for the prefetchers to follow (16 cost a 3B Q8_0 pass of 2-5 rows 4-15 %). */
    static final int CHUNK = 32;
    /** Q4_K/Q6_K batches up to this many rows read the weights directly; larger ones unpack once for all rows. */
    static final int K_QUANT_DIRECT_ROWS = 9;
    /** Activation rows that share one unpacking of a weight tile. */
    static final int ROW_GROUP = 32;

    private final Tensor tensor;
    private final MatmulKernel kernel;
    private final int rows;
    private final int columns;
    private final IntConsumer chunkTask = this::multiplyChunk;
    /** Q8_0 through {@link MatmulQ80Direct} (same results as the unpacking kernel, fewer instructions). */
    private final boolean direct;
    /** Q4_K or Q6_K: passes of up to {@link #K_QUANT_DIRECT_ROWS} rows through {@link MatmulKQuantRow} (same results, no unpacking). */
    private final boolean kQuantRow;
    /** F32 or BF16: one-row passes read the rows straight from the file (same results, no unpacking). */
    private final boolean floatRow;
    private Activations x;      // of the multiply in progress
    private float[] out;

    private CpuMatrix(Tensor tensor, MatmulKernel kernel) {
        this.tensor = tensor;
        this.kernel = kernel;
        this.rows = tensor.rows();
        this.columns = tensor.columns();
        boolean unpackOnly = Boolean.getBoolean("tandem.cpu.unpackingKernels");
        this.direct = tensor.type() == TensorType.Q8_0 && MatmulQ80Direct.supported() && !unpackOnly;
        this.floatRow = kernel instanceof MatmulFloatKernel f && f.readsRowsDirectly() && !unpackOnly;
        this.kQuantRow = (tensor.type() == TensorType.Q4_K || tensor.type() == TensorType.Q6_K) && MatmulKQuantRow.supported() && !unpackOnly;
    }

    public static CpuMatrix of(Tensor weights) {
        if (weights.dimensions() != 2) {
            throw new IllegalArgumentException("tensor '" + weights.name() + "' has shape " + java.util.Arrays.toString(weights.shape()) + ": a matrix needs 2 dimensions");
        }
        TensorType type = weights.type();
        long columns = weights.shape()[0];
        if (columns < 1 || weights.shape()[1] < 1) {
            throw new IllegalArgumentException("tensor '" + weights.name() + "' is empty: shape " + java.util.Arrays.toString(weights.shape()));
        }
        if (columns % type.blockSize() != 0) {
            throw new IllegalArgumentException("tensor '" + weights.name() + "': row length " + columns + " is not a multiple of the " + type + " block size " + type.blockSize());
        }
        if (weights.data().byteSize() < weights.byteSize()) {
            throw new IllegalArgumentException("tensor '" + weights.name() + "' needs " + weights.byteSize() + " bytes but its data has " + weights.data().byteSize());
        }
        MatmulKernel kernel = type.isQuantized() ? new MatmulBlockKernel(weights) : new MatmulFloatKernel(weights);
        return new CpuMatrix(weights, kernel);
    }

    /** Output size. */
    public int rows() { return rows; }

    /** Input size. */
    public int columns() { return columns; }

    public TensorType type() { return tensor.type(); }

    /** out[r*rows() + o] = dot(weight row o, activation row r) for r < x.rows(), o < rows(). */
    public synchronized void multiply(Activations x, float[] out, WorkerPool pool) {
        prepare(x, out, pool);
        this.x = x;
        this.out = out;
        try {
            pool.forEach(chunks(), chunkTask);
        } finally {
            this.x = null;
            this.out = null;
        }
    }

    /** Checks the shapes and makes the activation form the kernel reads; then {@link #multiplyChunk} may run. */
    void prepare(Activations x, float[] out, WorkerPool pool) {
        if (x.columns() != columns) {
            throw new IllegalArgumentException("tensor '" + tensor.name() + "' takes rows of " + columns + " but the activations have " + x.columns());
        }
        if (out.length < (long) x.rows() * rows) {
            throw new IllegalArgumentException("output of " + out.length + " floats is too short for " + x.rows() + " x " + rows + " (tensor '" + tensor.name() + "')");
        }
        kernel.prepare(x, pool);
    }

    /** Independent tasks of one multiply, {@link #CHUNK} output rows each. */
    int chunks() { return (rows + CHUNK - 1) / CHUNK; }

    private void multiplyChunk(int chunk) { multiplyChunk(chunk, x, out); }

    /** Output rows [chunk*CHUNK, +CHUNK) of every activation row; {@link #prepare} has run for x. */
    void multiplyChunk(int chunk, Activations x, float[] out) {
        MatmulScratch s = MatmulScratch.forColumns(columns);
        int first = chunk * CHUNK, end = Math.min(rows, first + CHUNK), batch = x.rows();
        if (direct) {
            MatmulQ80Direct.multiply(tensor.data(), tensor.rowBytes(), columns, first, end,
                    x.q80Scaled(), batch, out, rows, s.lanes);
            return;
        }
        if (floatRow && batch == 1) {
            for (int o = first; o < end; o++) out[o] = ((MatmulFloatKernel) kernel).dotRow(o, x, 0, s.lanes);
            return;
        }
        if (kQuantRow && batch <= K_QUANT_DIRECT_ROWS) {
            MemorySegment w = tensor.data();
            long rowBytes = tensor.rowBytes();
            boolean q4 = tensor.type() == TensorType.Q4_K;
            float[] xq = x.q8kValues(), xs = x.q8kScales();
            int[] xsum = x.q8kSums();
            for (int o = first; o < end; o++) {
                long at = o * rowBytes;
                int r = 0;
                for (; r + 1 < batch; r += 2) {
                    if (q4) MatmulKQuantRow.q4k2(w, at, columns, xq, xs, xsum, r, out, rows, o, s.lanes);
                    else MatmulKQuantRow.q6k2(w, at, columns, xq, xs, r, out, rows, o, s.lanes);
                }
                if (r < batch) {
                    out[r * rows + o] = q4 ? MatmulKQuantRow.q4k(w, at, columns, xq, xs, xsum, r, s.lanes)
                            : MatmulKQuantRow.q6k(w, at, columns, xq, xs, r, s.lanes);
                }
            }
            return;
        }
        for (int r0 = 0; r0 < batch; r0 += ROW_GROUP) {
            int r1 = Math.min(batch, r0 + ROW_GROUP);
            for (int o = first; o < end; o += MatmulKernel.TILE) {
                int n = Math.min(MatmulKernel.TILE, end - o);
                for (int k = 0; k < n; k++) kernel.unpack(o + k, s, k);
                for (int r = r0; r < r1; r++) kernel.dot(s, n, x, r, out, r * rows + o);
            }
        }
    }

    /** Dequantises weight row {@code row} into dst[offset..offset+columns()) (embedding lookup). */
    public void copyRow(int row, float[] dst, int offset) {
        if (row < 0 || row >= rows) {
            throw new IndexOutOfBoundsException("row " + row + " of tensor '" + tensor.name() + "' with " + rows + " rows");
        }
        tensor.type().dequantize(tensor.data(), row * tensor.rowBytes(), dst, offset, columns);
    }
}
