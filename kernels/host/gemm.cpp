// cublasGemmEx emulated on the host, for the subset Tandem calls: column-major C (FP32) = alpha * op(A) * op(B)
// + beta * C with A and B both CUDA_R_16F or both CUDA_R_16BF and CUBLAS_COMPUTE_32F: each product widened to
// float and accumulated in float, in k order. Single-threaded: the emulation tests correctness, not speed.
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace {

constexpr int kOpN = 0, kOpT = 1;          // cublasOperation_t
constexpr int kR16F = 2, kR16BF = 14;      // cudaDataType

// A plain global, not thread_local: the library's static TLS room is nearly used up (kernels/README.md).
std::mutex gemm_error_lock;
std::string gemm_error;

int fail(const std::string& message) {
    std::lock_guard<std::mutex> lock(gemm_error_lock);
    gemm_error = message;
    return 7;
}

float widen(const uint16_t* p, int type) {
    return type == kR16BF ? __bfloat162float(__ushort_as_bfloat16(*p)) : __half2float(__ushort_as_half(*p));
}

}  // namespace

// Returns 0, or 7 (CUBLAS_STATUS_INVALID_VALUE) with a message for tandem_host_gemm_error().
extern "C" __attribute__((visibility("default"))) int tandem_host_gemm_ex(
        int transa, int transb, int m, int n, int k, float alpha, const void* A, int atype, int lda,
        const void* B, int btype, int ldb, float beta, float* C, int ldc) {
    if ((transa != kOpN && transa != kOpT) || (transb != kOpN && transb != kOpT)) {
        return fail("gemmEx: operations must be N or T");
    }
    if (atype != btype || (atype != kR16F && atype != kR16BF)) {
        return fail("gemmEx: A and B must both be CUDA_R_16F or both CUDA_R_16BF, got " + std::to_string(atype) + " and " + std::to_string(btype));
    }
    if (m < 0 || n < 0 || k < 0 || ldc < (m > 1 ? m : 1) || lda < 1 || ldb < 1) {
        return fail("gemmEx: bad shape m=" + std::to_string(m) + " n=" + std::to_string(n) + " k=" + std::to_string(k));
    }
    const uint16_t* a = static_cast<const uint16_t*>(A);
    const uint16_t* b = static_cast<const uint16_t*>(B);
    // op(A)[i][l] and op(B)[l][j] in column-major storage.
    std::vector<float> aRow(k);
    for (int i = 0; i < m; ++i) {
        for (int l = 0; l < k; ++l) aRow[l] = widen(transa == kOpN ? a + (size_t) l * lda + i : a + (size_t) i * lda + l, atype);
        for (int j = 0; j < n; ++j) {
            float sum = 0.0f;
            for (int l = 0; l < k; ++l) {
                float bv = widen(transb == kOpN ? b + (size_t) j * ldb + l : b + (size_t) l * ldb + j, btype);
                sum += aRow[l] * bv;
            }
            float* c = C + (size_t) j * ldc + i;
            *c = alpha * sum + (beta == 0.0f ? 0.0f : beta * *c);
        }
    }
    return 0;
}

extern "C" __attribute__((visibility("default"))) const char* tandem_host_gemm_error() {
    std::lock_guard<std::mutex> lock(gemm_error_lock);
    return gemm_error.c_str();
}
