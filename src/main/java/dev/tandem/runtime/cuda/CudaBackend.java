package dev.tandem.runtime.cuda;

import dev.tandem.model.ModelFile;
import dev.tandem.runtime.Backend;
import dev.tandem.runtime.LoadOptions;
import dev.tandem.runtime.LoadedModel;

/**
 * Runs models with the CUDA kernels of {@code kernels/}, on a GPU ({@link #onDevice()}, name "cuda") or on the
 * host emulation ({@link #onHost()}, name "cuda-host"). Everything but the {@link GpuDriver} is the same code.
 * Models loaded from one backend share its driver; each model has its own stream, so a draft model's passes
 * overlap the main model's.
 */
public final class CudaBackend implements Backend {
    private final GpuDriver driver;

    public CudaBackend(GpuDriver driver) { this.driver = driver; }

    /** The real GPU; {@link dev.tandem.runtime.BackendUnavailableException} with the reason when there is none. */
    public static CudaBackend onDevice() { return new CudaBackend(JCudaGpuDriver.open()); }

    /** The host emulation; {@link HostKernelsUnavailableException} when its library was not built. */
    public static CudaBackend onHost() { return new CudaBackend(new HostGpuDriver()); }

    public GpuDriver driver() { return driver; }

    @Override public String name() { return driver.name(); }

    @Override
    public LoadedModel load(ModelFile file, LoadOptions options) { return new CudaModel(driver, file, options); }

    @Override public void close() { driver.close(); }
}
