package dev.tandem.runtime.cuda;

/**
 * Matrix products for long prompts, beside the {@link GpuDriver}: a prefill chunk's rows times a weight matrix as
 * one GEMM (cuBLAS's {@code cublasGemmEx}) instead of matvec launches. Inputs are 16-bit, products accumulate in
 * FP32 ({@code CUBLAS_COMPUTE_32F}, never the FP16-accumulating variants). {@link JCublasGemm} calls cuBLAS on
 * a GPU; {@link HostGemm} runs the host library's emulation of gemmEx, so the prefill path is tested here.
 */
public interface Gemm extends AutoCloseable {
    /** The 16-bit input type, with its {@code cudaDataType} value. */
    enum Precision {
        F16(2), BF16(14);

        final int cudaType;

        Precision(int cudaType) { this.cudaType = cudaType; }

        /** 1 for BF16: the {@code bf16} argument of the narrowing kernels. */
        int bf16() { return this == BF16 ? 1 : 0; }
    }

    /** cublasOperation_t and cublasComputeType_t values the calls use. */
    int OP_N = 0, OP_T = 1, COMPUTE_32F = 68, CUDA_R_32F = 0;

    /** One line: the library behind it. */
    String describe();

    /**
     * Enqueues on {@code stream}: {@code C[i][j] = Σ_l A[i][l]·B[j][l]} for i < m, j < n, with A (m rows) and B
     * (n rows) row-major 16-bit of k elements a row, C row-major FP32 with a row stride of {@code ldc} floats.
     * In cuBLAS's column-major terms: gemmEx(T, N, n, m, k, 1, B, k, A, k, 0, C, ldc).
     */
    void multiply(GpuStream stream, Precision precision, int m, int n, int k, DeviceBuffer a, DeviceBuffer b, DeviceBuffer c, int ldc);

    @Override
    void close();
}
