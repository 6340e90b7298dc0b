package dev.tandem.runtime.cuda;

import java.util.Arrays;

/**
 * A pass's matrix products on the model's stream: grouped matvec launches of at most {@link LaunchGeometry#MAX_ROWS}
 * rows, so that a chunk of 17 rows or fewer reads each weight once, or for a long prompt chunk the
 * {@link PrefillGemm}.
 */
final class Projections {
    /** out = x · mᵀ (+ bias, when not null): one matrix of a grouped matvec launch. */
    record Projection(DeviceMatrix m, DeviceBuffer bias, DeviceBuffer out) {}

    /** After a projection: residual += its output, then normOut = rmsnorm(residual) * weight (rmsnorm_residual's work). */
    record ResidualNorm(DeviceBuffer residual, DeviceBuffer weight, DeviceBuffer normOut) {}

    private final GpuDriver driver;
    private final GpuStream stream;
    private final PrefillGemm gemm;
    private final PassBuffers buffers;
    private final float eps;

    Projections(GpuDriver driver, GpuStream stream, PrefillGemm gemm, PassBuffers buffers, float rmsNormEps) {
        this.driver = driver;
        this.stream = stream;
        this.gemm = gemm;
        this.buffers = buffers;
        this.eps = rmsNormEps;
    }

    /**
     * out_j = x · W_jᵀ (+ bias_j) for {@code rows} rows: one GEMM per matrix for a chunk the
     * {@link PrefillGemm} takes, else grouped matvec launches, consecutive matrices of one type and row length (a layer's
     * Q, K and V, up to three) in one launch, so each launch fills the device with all their rows.
     */
    void project(DeviceBuffer in, int rows, Projection... ps) { projectGroups(in, rows, null, ps); }

    /**
     * The projection, then residual += its output and normOut = rmsnorm(residual) * weight: in the matvec launches'
     * epilogue (their last block), or for a GEMM chunk by rmsnorm_residual after it.
     */
    void projectIntoResidual(DeviceBuffer in, int rows, Projection p, ResidualNorm norm) {
        if (usesGemm(rows)) {
            projectGroups(in, rows, null, p);
            launch(Kernel.RMSNORM_RESIDUAL, LaunchGeometry.rmsnorm(rows), norm.residual(), p.out(), norm.weight(), norm.normOut(),
                    p.m().rows(), eps);
            return;
        }
        projectGroups(in, rows, norm, p);
    }

    /**
     * out = silu(x · gateᵀ) * (x · upᵀ) for {@code rows} rows: one gated matvec launch for a pass of up to
     * {@link LaunchGeometry#MATVEC_GATED_MAX_ROWS} rows when the two matrices share type and row length, else two
     * products and the swiglu kernel.
     */
    void gatedProject(DeviceBuffer in, int rows, DeviceMatrix gateW, DeviceMatrix upW, DeviceBuffer out) {
        if (rows > LaunchGeometry.MATVEC_GATED_MAX_ROWS || !gateW.launchesWith(upW)) {
            project(in, rows, new Projection(gateW, null, buffers.gate));
            project(in, rows, new Projection(upW, null, buffers.up));
            int n = gateW.rows();
            launch(Kernel.SWIGLU, LaunchGeometry.elementwise(rows * n), buffers.gate, buffers.up, out, rows * n);
            return;
        }
        int k = gateW.columns(), n = gateW.rows();
        launch(Kernel.matvecSwiglu(gateW.type(), rows), LaunchGeometry.matvecGated(gateW.type(), k, n, rows), gateW.data(), upW.data(), in, out, k, n, rows);
    }

    private boolean usesGemm(int rows) { return gemm.uses(rows); }

    /** {@link #project}, with the residual epilogue of {@code norm} (one projection only) when it is not null. */
    private void projectGroups(DeviceBuffer in, int rows, ResidualNorm norm, Projection... ps) {
        if (usesGemm(rows)) {
            for (Projection p : ps) {
                gemm.multiply(p.m(), in, p.out(), rows);
                if (p.bias() != null) {
                    int n = p.m().rows();
                    launch(Kernel.BIAS_ADD, LaunchGeometry.elementwise(rows * n), p.out(), p.bias(), n, rows * n);
                }
            }
            return;
        }
        for (int first = 0; first < ps.length; ) {
            int end = first + 1;
            while (end < ps.length && end - first < 3 && ps[end].m().launchesWith(ps[first].m())) end++;
            Projection[] group = Arrays.copyOfRange(ps, first, end);
            DeviceMatrix m = group[0].m();
            int total = 0;
            for (Projection p : group) total += p.m().rows();
            for (int r0 = 0; r0 < rows; r0 += LaunchGeometry.MAX_ROWS) {
                int r = Math.min(LaunchGeometry.MAX_ROWS, rows - r0);
                Object[] args = new Object[20];
                for (int j = 0; j < 3; j++) {
                    Projection p = j < group.length ? group[j] : null;
                    args[j] = p == null ? null : p.m().data();
                    args[4 + j] = p == null ? null : p.bias();
                    args[7 + j] = p == null ? null : p.out().floats((long) r0 * p.m().rows(), (long) r * p.m().rows());
                    args[11 + j] = p == null ? 0 : p.m().rows();
                }
                args[3] = in.floats((long) r0 * m.columns(), (long) r * m.columns());
                args[10] = m.columns();
                args[14] = r;
                if (norm != null) {  // one matrix: y0 = [r][n0]
                    int n0 = m.rows();
                    args[15] = norm.residual().floats((long) r0 * n0, (long) r * n0);
                    args[16] = norm.weight();
                    args[17] = norm.normOut().floats((long) r0 * n0, (long) r * n0);
                    args[19] = buffers.blocksDone;
                }
                args[18] = eps;
                launch(Kernel.matvec(m.type(), r), LaunchGeometry.matvec(m.type(), m.columns(), total, r), args);
            }
            first = end;
        }
    }

    private void launch(Kernel kernel, LaunchDims dims, Object... args) { driver.launch(kernel, dims, stream, args); }
}
