// An emulated cuBLAS 12, libcublas.so.12, for JCublas2 over the emulated libcuda.so.1: cublasGemmEx runs the host
// emulation's gemmEx (kernels/host/gemm.cpp) in stream order on the emulated driver's streams; handles, streams,
// version and math mode are kept; every other function JCublas2 imports is a generated stub (stubs-cublas.cpp)
// answering CUBLAS_STATUS_NOT_SUPPORTED. The exported names carry the version node libcublas.so.12, as JCublas2
// imports them (cublas.map).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "emulated_cuda.h"

namespace {

enum : int {
    CUBLAS_STATUS_SUCCESS = 0,
    CUBLAS_STATUS_NOT_INITIALIZED = 1,
    CUBLAS_STATUS_INVALID_VALUE = 7,
    CUBLAS_STATUS_EXECUTION_FAILED = 13,
    CUBLAS_STATUS_NOT_SUPPORTED = 15,
};
constexpr int kVersion = 120604;   // what JCublas 12.6 was built against: cuBLAS 12.6.4
constexpr int kR32F = 0, kR16F = 2, kR16BF = 14, kCompute32F = 68;

struct Handle {
    CUstream stream = nullptr;
    int mathMode = 0;
};

using GemmEx = int (*)(int, int, int, int, int, float, const void*, int, int, const void*, int, int, float, float*, int);

struct Gemm {
    GemmEx gemm;
    int transa, transb, m, n, k;
    float alpha, beta;
    const void* A;
    int atype, lda;
    const void* B;
    int btype, ldb;
    float* C;
    int ldc;
};

}  // namespace

extern "C" {
CUresult tandem_emulated_enqueue(CUstream, int (*)(void*), void*, void (*)(void*), const char*);
void* tandem_emulated_host_symbol(const char*);

EXPORT int cublasCreate_v2(void** handle) {
    if (!handle) return CUBLAS_STATUS_INVALID_VALUE;
    *handle = new Handle();
    return CUBLAS_STATUS_SUCCESS;
}

EXPORT int cublasDestroy_v2(void* handle) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    delete (Handle*) handle;
    return CUBLAS_STATUS_SUCCESS;
}

EXPORT int cublasGetVersion_v2(void* handle, int* version) {
    if (!version) return CUBLAS_STATUS_INVALID_VALUE;
    *version = kVersion;
    return CUBLAS_STATUS_SUCCESS;
}

EXPORT int cublasGetProperty(int type, int* value) {
    if (!value) return CUBLAS_STATUS_INVALID_VALUE;
    *value = type == 0 ? 12 : type == 1 ? 6 : 4;   // MAJOR_VERSION, MINOR_VERSION, PATCH_LEVEL
    return CUBLAS_STATUS_SUCCESS;
}

EXPORT int cublasSetStream_v2(void* handle, CUstream stream) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    ((Handle*) handle)->stream = stream;
    return CUBLAS_STATUS_SUCCESS;
}

EXPORT int cublasGetStream_v2(void* handle, CUstream* stream) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!stream) return CUBLAS_STATUS_INVALID_VALUE;
    *stream = ((Handle*) handle)->stream;
    return CUBLAS_STATUS_SUCCESS;
}

EXPORT int cublasSetMathMode(void* handle, int mode) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    ((Handle*) handle)->mathMode = mode;
    return CUBLAS_STATUS_SUCCESS;
}

EXPORT int cublasGetMathMode(void* handle, int* mode) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!mode) return CUBLAS_STATUS_INVALID_VALUE;
    *mode = ((Handle*) handle)->mathMode;
    return CUBLAS_STATUS_SUCCESS;
}

// The subset Tandem calls: 16-bit A and B (both F16 or both BF16), FP32 C, CUBLAS_COMPUTE_32F, host-pointer
// alpha and beta (read now, as cuBLAS does in CUBLAS_POINTER_MODE_HOST). Anything else is refused at the call.
EXPORT int cublasGemmEx(void* handle, int transa, int transb, int m, int n, int k, const void* alpha, const void* A, int atype,
                        int lda, const void* B, int btype, int ldb, const void* beta, void* C, int ctype, int ldc,
                        int computeType, int algo) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!alpha || !beta || !A || !B || !C || m < 0 || n < 0 || k < 0) return CUBLAS_STATUS_INVALID_VALUE;
    if (ctype != kR32F || computeType != kCompute32F || atype != btype || (atype != kR16F && atype != kR16BF)) {
        std::fprintf(stderr, "emulated libcublas: cublasGemmEx with types A %d B %d C %d compute %d is not emulated\n", atype, btype, ctype, computeType);
        return CUBLAS_STATUS_NOT_SUPPORTED;
    }
    auto gemm = (GemmEx) tandem_emulated_host_symbol("tandem_host_gemm_ex");
    if (!gemm) return CUBLAS_STATUS_NOT_INITIALIZED;
    Gemm* g = new Gemm{gemm, transa, transb, m, n, k, 0, 0, A, atype, lda, B, btype, ldb, (float*) C, ldc};
    std::memcpy(&g->alpha, alpha, 4);
    std::memcpy(&g->beta, beta, 4);
    if (std::getenv("TANDEM_EMULATED_TRACE")) {
        std::fprintf(stderr, "emulated libcublas: gemmEx %d %d m %d n %d k %d alpha %g A %p type %d lda %d B %p ldb %d beta %g C %p ldc %d stream %p\n",
                     transa, transb, m, n, k, g->alpha, A, atype, lda, B, ldb, g->beta, C, ldc, (void*) ((Handle*) handle)->stream);
    }
    CUresult r = tandem_emulated_enqueue(
            ((Handle*) handle)->stream,
            [](void* p) {
                Gemm* x = (Gemm*) p;
                return x->gemm(x->transa, x->transb, x->m, x->n, x->k, x->alpha, x->A, x->atype, x->lda, x->B, x->btype, x->ldb, x->beta, x->C, x->ldc);
            },
            g, [](void* p) { delete (Gemm*) p; }, "cublasGemmEx");
    return r == 0 ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}

EXPORT const char* cublasGetStatusName(int status) {
    switch (status) {
        case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
        case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
        case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
        case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
        case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
        default: return "CUBLAS_STATUS_UNKNOWN";
    }
}

EXPORT const char* cublasGetStatusString(int status) { return cublasGetStatusName(status); }

}  // extern "C"
