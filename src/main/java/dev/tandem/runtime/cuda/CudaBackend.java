package dev.tandem.runtime.cuda;

import dev.tandem.model.ModelFile;
import dev.tandem.runtime.Backend;
import dev.tandem.runtime.LoadOptions;
import dev.tandem.runtime.LoadedModel;

/**
 * Runs models with the CUDA kernels of {@code kernels/}, on a GPU ({@link #onDevice()}, name "cuda") or on the
 * host emulation ({@link #onHost()}, name "cuda-host"). Everything but the {@link GpuDriver} is the same code.
 * With the system property {@code tandem.kernelProfile} set, {@link #onDevice()} and {@link #onHost()} time every
 * launch ({@link KernelProfile}) and report per-kernel bandwidth when the backend closes.
 * Models loaded from one backend share its driver; each model has its own stream, so a draft model's passes
 * overlap the main model's.
 */
public final class CudaBackend implements Backend {
    private final GpuDriver driver;
    private final Gemm gemm;
    private final String gemmStatus;

    /** Kernels only: prefill runs matvec launches whatever its length. */
    public CudaBackend(GpuDriver driver) { this(driver, null, "no GEMM library given"); }

    /** With {@code gemm} (or null) for long prompt passes; {@code gemmStatus} says what it is or why there is none. */
    public CudaBackend(GpuDriver driver, Gemm gemm, String gemmStatus) {
        this.driver = driver;
        this.gemm = gemm;
        this.gemmStatus = gemm != null ? gemm.describe() : gemmStatus;
    }

    /**
     * The real GPU, with cuBLAS for long prompts when JCublas's cuBLAS 12 loads ({@link #gemmStatus()} says why not
     * otherwise); {@link dev.tandem.runtime.BackendUnavailableException} with the reason when there is no GPU.
     */
    public static CudaBackend onDevice() {
        JCudaGpuDriver driver = JCudaGpuDriver.open();
        GpuDriver used = KernelProfile.wrapIfAsked(driver);
        String reason = JCublasGemm.probe();
        if (reason != null) return new CudaBackend(used, null, reason);
        try {
            return new CudaBackend(used, JCublasGemm.open(driver), null);
        } catch (RuntimeException | LinkageError e) {
            return new CudaBackend(used, null, "cuBLAS unusable: " + JCudaNatives.firstLine(e));
        }
    }

    /** The host emulation, with its gemmEx emulation; {@link HostKernelsUnavailableException} when its library was not built. */
    public static CudaBackend onHost() {
        HostGpuDriver driver = new HostGpuDriver();
        return new CudaBackend(KernelProfile.wrapIfAsked(driver), new HostGemm(driver), null);
    }

    public GpuDriver driver() { return driver; }

    /** The GEMM library long prompt passes use, or null (matvec kernels only). */
    public Gemm gemm() { return gemm; }

    /** One line: the GEMM library in use, or why there is none (e.g. "cuBLAS 12 not found ..."). */
    public String gemmStatus() { return gemmStatus; }

    @Override public String name() { return driver.name(); }

    @Override
    public LoadedModel load(ModelFile file, LoadOptions options) { return new CudaModel(driver, gemm, file, options); }

    @Override
    public void close() {
        if (driver instanceof KernelProfile profile) profile.reportAsAsked();
        if (gemm != null) gemm.close();
        driver.close();
    }
}
