// CublasLt.cpp - dlopen of cuBLASLt and the library GEMMs of a plan.
#include "runtime/cuda/CublasLt.h"

#include <dlfcn.h>

#include <cstdlib>
#include <vector>

namespace moec::rt::cuda {

StatusOr<std::shared_ptr<CublasLt>> CublasLt::load() {
  const char *override = std::getenv("MOEC_CUBLASLT");
  std::vector<std::string> candidates;
  if (override && *override)
    candidates = {override};
  else
    candidates = {"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so.11",
                  "libcublasLt.so"};
  // The first that loads and creates a handle (a library too new for the
  // driver fails there, and an older one may do).
  std::string tried;
  for (const std::string &candidate : candidates) {
    auto loaded = loadFrom(candidate);
    if (loaded)
      return loaded;
    tried += (tried.empty() ? "" : "; ") + loaded.status().message();
  }
  return Status::error("no cuBLASLt (the plan's library GEMMs need it: moec --gemm=cublaslt): " +
                       tried + "; set MOEC_CUBLASLT to its path");
}

StatusOr<std::shared_ptr<CublasLt>> CublasLt::loadFrom(const std::string &path) {
  void *library = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!library) {
    const char *why = dlerror();
    return Status::error(why ? why : "cannot load " + path);
  }
  std::shared_ptr<CublasLt> lt(new CublasLt());
  lt->library_ = library; // closed with lt on any failure below
  CublasLtSymbols &api = lt->symbols_;
#define MOEC_CUBLASLT_SYMBOL(name)                                                             \
  api.name = reinterpret_cast<decltype(api.name)>(dlsym(library, #name));                     \
  if (!api.name)                                                                               \
    return Status::error("cuBLASLt " + path + " lacks symbol " #name);
  MOEC_CUBLASLT_SYMBOL(cublasLtCreate)
  MOEC_CUBLASLT_SYMBOL(cublasLtDestroy)
  MOEC_CUBLASLT_SYMBOL(cublasLtGetStatusString)
  MOEC_CUBLASLT_SYMBOL(cublasLtMatmulDescCreate)
  MOEC_CUBLASLT_SYMBOL(cublasLtMatmulDescDestroy)
  MOEC_CUBLASLT_SYMBOL(cublasLtMatmulDescSetAttribute)
  MOEC_CUBLASLT_SYMBOL(cublasLtMatrixLayoutCreate)
  MOEC_CUBLASLT_SYMBOL(cublasLtMatrixLayoutDestroy)
  MOEC_CUBLASLT_SYMBOL(cublasLtMatmulPreferenceCreate)
  MOEC_CUBLASLT_SYMBOL(cublasLtMatmulPreferenceDestroy)
  MOEC_CUBLASLT_SYMBOL(cublasLtMatmulPreferenceSetAttribute)
  MOEC_CUBLASLT_SYMBOL(cublasLtMatmulAlgoGetHeuristic)
  MOEC_CUBLASLT_SYMBOL(cublasLtMatmul)
#undef MOEC_CUBLASLT_SYMBOL
  if (Status s = lt->check(api.cublasLtCreate(&lt->handle_), "cublasLtCreate"); !s)
    return Status::error(path + ": " + s.message());
  return lt;
}

CublasLt::~CublasLt() {
  if (handle_)
    symbols_.cublasLtDestroy(handle_);
  if (library_)
    dlclose(library_);
}

Status CublasLt::check(cublasStatus_t status, const char *call) const {
  if (status == cublas::kSuccess)
    return Status::ok();
  const char *text = symbols_.cublasLtGetStatusString ? symbols_.cublasLtGetStatusString(status)
                                                      : nullptr;
  return Status::error(std::string(call) + " failed: " +
                       (text ? text : "status " + std::to_string(status)));
}

// cuBLASLt is column-major; moec's operands are row-major. A row-major
// X[r, c] (leading dimension ld) is the column-major c x r matrix Xᵀ, so
// the row-major C = A B is computed as the column-major Cᵀ = Bᵀ Aᵀ: the
// library's first operand is B, its second A, its sizes (n, m, k).
StatusOr<std::unique_ptr<CublasLtGemm>>
CublasLtGemm::plan(std::shared_ptr<CublasLt> library, const LibraryGemm &g,
                   size_t workspaceBytes) {
  std::unique_ptr<CublasLtGemm> gemm(new CublasLtGemm());
  gemm->library_ = library;
  gemm->gemm_ = g;
  const CublasLtSymbols &api = library->api();
  const CublasLt &lt = *library;
  int compute = g.bf16 ? cublas::kComputeFastBf16 : cublas::kComputeFloat;
  if (Status s = lt.check(api.cublasLtMatmulDescCreate(&gemm->desc_, compute, cublas::kDataFloat),
                          "cublasLtMatmulDescCreate");
      !s)
    return s;
  // B not transposed (B[k * ldb + n]) is, column-major, Bᵀ as stored
  // (n x k): no operation; transposed (B[n * ldb + k]) it is stored k x n.
  int opFirst = g.bTransposed ? cublas::kOpT : cublas::kOpN;
  int opSecond = g.aTransposed ? cublas::kOpT : cublas::kOpN;
  if (Status s = lt.check(api.cublasLtMatmulDescSetAttribute(gemm->desc_, cublas::kDescTransA,
                                                             &opFirst, sizeof(opFirst)),
                          "cublasLtMatmulDescSetAttribute(TRANSA)");
      !s)
    return s;
  if (Status s = lt.check(api.cublasLtMatmulDescSetAttribute(gemm->desc_, cublas::kDescTransB,
                                                             &opSecond, sizeof(opSecond)),
                          "cublasLtMatmulDescSetAttribute(TRANSB)");
      !s)
    return s;
  // Layouts as stored (rows x columns, column-major).
  auto layout = [&](cublasLtMatrixLayout_t *out, uint64_t rows, uint64_t cols, int64_t ld) {
    return lt.check(api.cublasLtMatrixLayoutCreate(out, cublas::kDataFloat, rows, cols, ld),
                    "cublasLtMatrixLayoutCreate");
  };
  if (Status s = g.bTransposed ? layout(&gemm->a_, g.k, g.n, g.ldb)
                               : layout(&gemm->a_, g.n, g.k, g.ldb);
      !s)
    return s;
  if (Status s = g.aTransposed ? layout(&gemm->b_, g.m, g.k, g.lda)
                               : layout(&gemm->b_, g.k, g.m, g.lda);
      !s)
    return s;
  if (Status s = layout(&gemm->c_, g.n, g.m, g.ldc); !s)
    return s;

  cublasLtMatmulPreference_t preference = nullptr;
  if (Status s = lt.check(api.cublasLtMatmulPreferenceCreate(&preference),
                          "cublasLtMatmulPreferenceCreate");
      !s)
    return s;
  uint64_t maxWorkspace = workspaceBytes;
  Status set = lt.check(api.cublasLtMatmulPreferenceSetAttribute(
                            preference, cublas::kPrefMaxWorkspace, &maxWorkspace,
                            sizeof(maxWorkspace)),
                        "cublasLtMatmulPreferenceSetAttribute");
  // Tensors are 64-byte aligned (the arena's alignment), not the 256 the
  // heuristic assumes by default: only algorithms that work with that.
  uint32_t alignment = 64;
  for (int attribute = cublas::kPrefMinAlignmentA; set && attribute < cublas::kPrefMinAlignmentA + 4;
       ++attribute)
    set = lt.check(api.cublasLtMatmulPreferenceSetAttribute(preference, attribute, &alignment,
                                                            sizeof(alignment)),
                   "cublasLtMatmulPreferenceSetAttribute(MIN_ALIGNMENT)");
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  Status heuristic = set ? lt.check(api.cublasLtMatmulAlgoGetHeuristic(
                                        library->handle(), gemm->desc_, gemm->a_, gemm->b_,
                                        gemm->c_, gemm->c_, preference, 1, &result, &found),
                                    "cublasLtMatmulAlgoGetHeuristic")
                         : set;
  api.cublasLtMatmulPreferenceDestroy(preference);
  if (!heuristic)
    return heuristic;
  if (found == 0)
    return Status::error("cuBLASLt has no algorithm for a " + std::to_string(g.m) + " x " +
                         std::to_string(g.n) + " x " + std::to_string(g.k) + " GEMM");
  gemm->algo_ = result.algo;
  return gemm;
}

CublasLtGemm::~CublasLtGemm() {
  const CublasLtSymbols &api = library_->api();
  for (cublasLtMatrixLayout_t layout : {a_, b_, c_})
    if (layout)
      api.cublasLtMatrixLayoutDestroy(layout);
  if (desc_)
    api.cublasLtMatmulDescDestroy(desc_);
}

Status CublasLtGemm::run(void **arguments, CUstream stream, void *workspace,
                         size_t workspaceBytes) const {
  auto pointer = [&](unsigned index) { return *static_cast<void *const *>(arguments[index]); };
  const float one = 1.0f, beta = gemm_.accumulate ? 1.0f : 0.0f;
  void *c = pointer(gemm_.c);
  const CublasLtSymbols &api = library_->api();
  return library_->check(api.cublasLtMatmul(library_->handle(), desc_, &one, pointer(gemm_.b), a_,
                                            pointer(gemm_.a), b_, &beta, c, c_, c, c_, &algo_,
                                            workspace, workspaceBytes, stream),
                         "cublasLtMatmul");
}

} // namespace moec::rt::cuda
