package dev.tandem.runtime.cuda;

import jcuda.Pointer;
import jcuda.jcublas.JCublas2;
import jcuda.jcublas.cublasGemmAlgo;
import jcuda.jcublas.cublasHandle;
import jcuda.jcublas.cublasStatus;
import jcuda.runtime.cudaStream_t;

/**
 * {@link Gemm} through JCublas (cuBLAS 12): {@code cublasGemmEx} with 16-bit inputs, FP32 output and
 * {@code CUBLAS_COMPUTE_32F}. The handle belongs to the driver's context, so it is made and used on the driver's
 * owner thread (a forward pass enqueues from there). Never touch this class before {@link #probe()} returned null.
 */
public final class JCublasGemm implements Gemm {
    private static final Pointer ONE = Pointer.to(new float[] {1f}), ZERO = Pointer.to(new float[] {0f});

    private final JCudaGpuDriver driver;
    private final cublasHandle handle = new cublasHandle();
    private final String description;

    /**
     * Why cuBLAS cannot be used with an open {@code driver}, in one line; null when it can. Never throws. JCublas
     * 12.6's natives link against {@code libcublas.so.12}; a machine with only CUDA 13's {@code libcublas.so.13}
     * gets "cuBLAS 12 not found".
     */
    public static String probe() {
        try {
            JCudaNatives.load(() -> JCublas2.setExceptionsEnabled(true));
            return null;
        } catch (Throwable t) {
            return "cuBLAS 12 not found (JCublas 12.6 needs libcublas.so.12 and libcublasLt.so.12 on the library path): " + JCudaNatives.firstLine(t);
        }
    }


    /** cuBLAS on {@code driver}'s device; throws {@link IllegalStateException} with {@link #probe()}'s reason when it cannot. */
    public static JCublasGemm open(JCudaGpuDriver driver) {
        String reason = probe();
        if (reason != null) throw new IllegalStateException(reason);
        return new JCublasGemm(driver);
    }

    private JCublasGemm(JCudaGpuDriver driver) {
        this.driver = driver;
        this.description = driver.call(() -> {
            JCublas2.cublasCreate(handle);
            int[] version = new int[1];
            JCublas2.cublasGetVersion(handle, version);
            return "cuBLAS " + version[0] / 10000 + "." + version[0] / 100 % 100 + "." + version[0] % 100 + " (gemmEx, FP32 compute)";
        });
    }

    @Override public String describe() { return description; }

    @Override
    public void multiply(GpuStream stream, Precision precision, int m, int n, int k, DeviceBuffer a, DeviceBuffer b, DeviceBuffer c, int ldc) {
        driver.call(() -> {
            JCublas2.cublasSetStream(handle, new cudaStream_t(JCudaGpuDriver.handle(stream)));
            // cublasGemmEx_new is cuBLAS's cublasGemmEx (a cublasComputeType_t): JCublas2's cublasGemmEx takes the
            // CUDA 10 form (a cudaDataType) and answers NOT_SUPPORTED for COMPUTE_32F without throwing or calling
            // cuBLAS, leaving C as it was; the status is checked here for the same reason.
            int status = JCublas2.cublasGemmEx_new(handle, OP_T, OP_N, n, m, k, ONE, JCudaGpuDriver.ptr(b), precision.cudaType, k,
                    JCudaGpuDriver.ptr(a), precision.cudaType, k, ZERO, JCudaGpuDriver.ptr(c), CUDA_R_32F, ldc,
                    COMPUTE_32F, cublasGemmAlgo.CUBLAS_GEMM_DEFAULT);
            if (status != cublasStatus.CUBLAS_STATUS_SUCCESS) {
                throw new KernelLaunchException("cublasGemmEx " + m + "x" + n + "x" + k + " (" + precision + "): " + cublasStatus.stringFor(status));
            }
            return null;
        });
    }

    @Override
    public void close() {
        driver.call(() -> JCublas2.cublasDestroy(handle));
    }
}
