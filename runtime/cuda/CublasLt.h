// CublasLt.h - cuBLASLt, loaded at run time with dlopen, for a plan's
// library GEMMs (moec --gemm=cublaslt).
//
// As with the driver, nothing links it: the library is looked up as
// $MOEC_CUBLASLT, then libcublasLt.so.13, .so.12, .so.11 and libcublasLt.so
// on the loader's path, the first time a plan with library GEMMs is loaded.
#ifndef MOEC_RUNTIME_CUDA_CUBLASLT_H
#define MOEC_RUNTIME_CUDA_CUBLASLT_H

#include "runtime/core/LibraryGemm.h"
#include "runtime/cuda/CudaDriver.h"

#include <cstdint>
#include <memory>
#include <string>

namespace moec::rt::cuda {

// cublasLt.h's types and the enumerators moec uses, declared here so that
// no CUDA header is needed to build the runtime (test/unit/runtime checks
// them against the header when the toolkit is installed).
using cublasStatus_t = int;
struct cublasLtContext;
struct cublasLtMatmulDescOpaque_t;
struct cublasLtMatrixLayoutOpaque_t;
struct cublasLtMatmulPreferenceOpaque_t;
using cublasLtHandle_t = cublasLtContext *;
using cublasLtMatmulDesc_t = cublasLtMatmulDescOpaque_t *;
using cublasLtMatrixLayout_t = cublasLtMatrixLayoutOpaque_t *;
using cublasLtMatmulPreference_t = cublasLtMatmulPreferenceOpaque_t *;
struct cublasLtMatmulAlgo_t {
  uint64_t data[8];
};
struct cublasLtMatmulHeuristicResult_t {
  cublasLtMatmulAlgo_t algo;
  size_t workspaceSize;
  cublasStatus_t state;
  float wavesCount;
  int reserved[4];
};
namespace cublas {
constexpr int kSuccess = 0;           // CUBLAS_STATUS_SUCCESS
constexpr int kDataFloat = 0;         // CUDA_R_32F
constexpr int kComputeFloat = 68;     // CUBLAS_COMPUTE_32F (no TF32)
constexpr int kComputeFastBf16 = 75;  // CUBLAS_COMPUTE_32F_FAST_16BF
constexpr int kDescTransA = 3;        // CUBLASLT_MATMUL_DESC_TRANSA
constexpr int kDescTransB = 4;        // CUBLASLT_MATMUL_DESC_TRANSB
constexpr int kPrefMaxWorkspace = 1;  // CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES
constexpr int kPrefMinAlignmentA = 5; // CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES (B, C, D: 6-8)
constexpr int kOpN = 0, kOpT = 1;     // CUBLAS_OP_N, CUBLAS_OP_T
} // namespace cublas

/// The entry points moec resolves.
struct CublasLtSymbols {
  cublasStatus_t (*cublasLtCreate)(cublasLtHandle_t *) = nullptr;
  cublasStatus_t (*cublasLtDestroy)(cublasLtHandle_t) = nullptr;
  const char *(*cublasLtGetStatusString)(cublasStatus_t) = nullptr;
  cublasStatus_t (*cublasLtMatmulDescCreate)(cublasLtMatmulDesc_t *, int, int) = nullptr;
  cublasStatus_t (*cublasLtMatmulDescDestroy)(cublasLtMatmulDesc_t) = nullptr;
  cublasStatus_t (*cublasLtMatmulDescSetAttribute)(cublasLtMatmulDesc_t, int, const void *,
                                                   size_t) = nullptr;
  cublasStatus_t (*cublasLtMatrixLayoutCreate)(cublasLtMatrixLayout_t *, int, uint64_t, uint64_t,
                                               int64_t) = nullptr;
  cublasStatus_t (*cublasLtMatrixLayoutDestroy)(cublasLtMatrixLayout_t) = nullptr;
  cublasStatus_t (*cublasLtMatmulPreferenceCreate)(cublasLtMatmulPreference_t *) = nullptr;
  cublasStatus_t (*cublasLtMatmulPreferenceDestroy)(cublasLtMatmulPreference_t) = nullptr;
  cublasStatus_t (*cublasLtMatmulPreferenceSetAttribute)(cublasLtMatmulPreference_t, int,
                                                         const void *, size_t) = nullptr;
  cublasStatus_t (*cublasLtMatmulAlgoGetHeuristic)(
      cublasLtHandle_t, cublasLtMatmulDesc_t, cublasLtMatrixLayout_t, cublasLtMatrixLayout_t,
      cublasLtMatrixLayout_t, cublasLtMatrixLayout_t, cublasLtMatmulPreference_t, int,
      cublasLtMatmulHeuristicResult_t *, int *) = nullptr;
  cublasStatus_t (*cublasLtMatmul)(cublasLtHandle_t, cublasLtMatmulDesc_t, const void *,
                                   const void *, cublasLtMatrixLayout_t, const void *,
                                   cublasLtMatrixLayout_t, const void *, const void *,
                                   cublasLtMatrixLayout_t, void *, cublasLtMatrixLayout_t,
                                   const cublasLtMatmulAlgo_t *, void *, size_t,
                                   CUstream) = nullptr;
};

/// A loaded cuBLASLt with a handle (for the current context's device).
class CublasLt {
public:
  /// Loads the library and creates a handle; the error says why it cannot
  /// (which files were tried, a missing symbol).
  static StatusOr<std::shared_ptr<CublasLt>> load();
  ~CublasLt();
  CublasLt(const CublasLt &) = delete;
  CublasLt &operator=(const CublasLt &) = delete;

  const CublasLtSymbols &api() const { return symbols_; }
  cublasLtHandle_t handle() const { return handle_; }
  /// A status naming `call` when `status` is not success.
  Status check(cublasStatus_t status, const char *call) const;

private:
  CublasLt() = default;
  static StatusOr<std::shared_ptr<CublasLt>> loadFrom(const std::string &path);
  void *library_ = nullptr;
  CublasLtSymbols symbols_;
  cublasLtHandle_t handle_ = nullptr;
};

/// One library GEMM, planned once (descriptors and the algorithm the
/// heuristic picks for a workspace of `workspaceBytes`), run on a stream:
/// the same algorithm every time, so the same bits run after run.
class CublasLtGemm {
public:
  static StatusOr<std::unique_ptr<CublasLtGemm>> plan(std::shared_ptr<CublasLt> library,
                                                      const LibraryGemm &gemm,
                                                      size_t workspaceBytes);
  ~CublasLtGemm();
  const LibraryGemm &gemm() const { return gemm_; }
  /// Runs over the step's arguments (cuLaunchKernel's convention).
  Status run(void **arguments, CUstream stream, void *workspace, size_t workspaceBytes) const;

private:
  CublasLtGemm() = default;
  std::shared_ptr<CublasLt> library_;
  LibraryGemm gemm_;
  cublasLtMatmulDesc_t desc_ = nullptr;
  cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, c_ = nullptr;
  cublasLtMatmulAlgo_t algo_{};
};

} // namespace moec::rt::cuda

#endif // MOEC_RUNTIME_CUDA_CUBLASLT_H
