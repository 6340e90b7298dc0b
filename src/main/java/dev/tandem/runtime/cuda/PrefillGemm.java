package dev.tandem.runtime.cuda;

import dev.tandem.model.ModelConfig;
import dev.tandem.model.TensorType;

import java.util.List;

/**
 * Long prompt chunks' matrix products through a {@link Gemm} (cuBLAS, or its host emulation): a chunk of at least
 * {@link #rows()} rows multiplies each weight matrix as GEMMs, activations narrowed to 16 bits, weight rows decoded
 * to 16 bits in slices (F16/BF16 weights are used as stored), FP32 accumulation. Such passes are outside the
 * bitwise contract (cuBLAS picks its reduction order by shape); decode and verification passes (at most 17 rows)
 * never come here. Without a {@code Gemm} (kernels only) no chunk does.
 */
final class PrefillGemm implements AutoCloseable {
    /** Weight elements decoded per GEMM slice: bounds the weight scratch (2 bytes each). */
    private static final long SLICE_ELEMENTS = 16L << 20;

    private final GpuDriver driver;
    /** Or null: every chunk runs matvec launches. */
    private final Gemm gemm;
    private final GpuStream stream;
    private final ModelConfig c;
    private final int maxRows;
    private final List<DeviceMatrix> matrices;
    private int rows = Integer.getInteger("tandem.gemmRows", 64);
    /** A chunk's activations and a slice of weight rows, 16-bit; allocated for the first chunk that needs them. */
    private DeviceBuffer activations, weights;
    private long calls;

    /** {@code matrices}: every matrix a pass multiplies by, for sizing the weight scratch. */
    PrefillGemm(GpuDriver driver, Gemm gemm, GpuStream stream, ModelConfig c, int maxRows, List<DeviceMatrix> matrices) {
        this.driver = driver;
        this.gemm = gemm;
        this.stream = stream;
        this.c = c;
        this.maxRows = maxRows;
        this.matrices = matrices;
    }

    /** Chunks of at least this many rows multiply through the GEMM (default 64, {@code tandem.gemmRows}). */
    int rows() { return rows; }

    /** Sets {@link #rows()}; the caller drops graphs captured under the old threshold. */
    void rows(int rows) { this.rows = rows; }

    /** GEMM calls enqueued so far. */
    long calls() { return calls; }

    /** Whether a chunk of {@code chunkRows} rows multiplies through the GEMM instead of matvec launches. */
    boolean uses(int chunkRows) { return gemm != null && chunkRows >= rows && chunkRows > LaunchGeometry.MAX_ROWS; }

    /** Allocates the scratch before the first pass whose chunks use the GEMM (never inside a capture). */
    void prepare(int batchRows) {
        int chunkRows = Math.min(batchRows, maxRows);
        if (activations != null || !uses(chunkRows)) return;
        long widest = Math.max(Math.max(c.hiddenSize(), c.qDim()), c.ffnSize());
        long sliceElements = 0;
        for (DeviceMatrix m : matrices) sliceElements = Math.max(sliceElements, (long) slice(m) * m.columns());
        activations = driver.allocate((long) maxRows * widest * 2);
        weights = driver.allocate(sliceElements * 2);
    }

    /**
     * out = in · mᵀ for {@code chunkRows} rows: in narrowed to 16 bits once, m's rows decoded to 16 bits a slice at a
     * time (F16/BF16 weights of the chosen precision are read as stored), each slice one GEMM into its columns of out.
     */
    void multiply(DeviceMatrix m, DeviceBuffer in, DeviceBuffer out, int chunkRows) {
        int k = m.columns(), n = m.rows();
        // BF16 weights multiply in BF16, everything else in F16 (more mantissa; activations stay well inside its range).
        Gemm.Precision precision = m.type() == TensorType.BF16 ? Gemm.Precision.BF16 : Gemm.Precision.F16;
        boolean asStored = m.type() == TensorType.F16 || m.type() == TensorType.BF16;
        long aBytes = (long) chunkRows * k * 2;
        int slice = slice(m);
        DeviceBuffer a = activations.slice(0, aBytes);
        driver.launch(Kernel.NARROW16, LaunchGeometry.narrow16(chunkRows * k), stream, in.floats(0, (long) chunkRows * k), a, chunkRows * k, precision.bf16());
        for (int n0 = 0; n0 < n; n0 += slice) {
            int count = Math.min(slice, n - n0);
            DeviceBuffer b;
            if (asStored) {
                b = m.data().slice((long) n0 * k * 2, (long) count * k * 2);
            } else {
                b = weights.slice(0, (long) count * k * 2);
                driver.launch(Kernel.dequantize16(m.type()), LaunchGeometry.dequantize16(m.type(), k, count), stream, m.data(), b, k, n0, precision.bf16());
            }
            gemm.multiply(stream, precision, chunkRows, count, k, a, b, out.floats(n0, (long) (chunkRows - 1) * n + count), n);
            calls++;
        }
    }

    /** Weight rows decoded per GEMM slice of {@code m}. */
    private static int slice(DeviceMatrix m) { return (int) Math.max(1, Math.min(m.rows(), SLICE_ELEMENTS / m.columns())); }

    @Override
    public void close() {
        if (activations != null) activations.close();
        if (weights != null) weights.close();
        activations = weights = null;
    }
}
