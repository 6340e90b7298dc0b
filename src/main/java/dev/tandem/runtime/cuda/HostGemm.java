package dev.tandem.runtime.cuda;

/** {@link Gemm} on the host emulation: the host library's gemmEx, enqueued on the driver's stream like a kernel. */
public final class HostGemm implements Gemm {
    private final HostGpuDriver driver;
    private final HostKernels kernels;

    public HostGemm(HostGpuDriver driver) {
        this.driver = driver;
        this.kernels = HostKernels.get();
    }

    @Override public String describe() { return "gemmEx emulated on the host (FP32 accumulation)"; }

    @Override
    public void multiply(GpuStream stream, Precision precision, int m, int n, int k, DeviceBuffer a, DeviceBuffer b, DeviceBuffer c, int ldc) {
        var as = HostGpuDriver.segment(a);
        var bs = HostGpuDriver.segment(b);
        var cs = HostGpuDriver.segment(c);
        driver.enqueue(stream, () -> kernels.gemmEx(OP_T, OP_N, n, m, k, 1f, bs, precision.cudaType, k, as, k, 0f, cs, ldc));
    }

    @Override public void close() {}
}
