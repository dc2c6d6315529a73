// LibraryGemm.h - a GEMM a plan asks a library to run (moec --gemm=cublaslt).
#ifndef MOEC_RUNTIME_CORE_LIBRARYGEMM_H
#define MOEC_RUNTIME_CORE_LIBRARYGEMM_H

#include "runtime/core/Status.h"
#include "runtime/schema/plan_generated.h"

#include <cstdint>
#include <string>

namespace moec::rt {

/// C[m, n] = (C +) Σ_k A(m, k) B(k, n) over row-major operands that are
/// arguments of the step (by index): A(m, k) at A[m * lda + k] (transposed:
/// A[k * lda + m]), B(k, n) at B[k * ldb + n] (transposed: B[n * ldb + k]);
/// bf16: operands rounded to bf16, fp32 accumulation (cuBLASLt's
/// CUBLAS_COMPUTE_32F_FAST_16BF may round them to TF32 instead: bf16 or
/// better; cuda-emu rounds to bf16).
struct LibraryGemm {
  int64_t m = 0, n = 0, k = 0;
  unsigned a = 0, b = 0, c = 0;
  int64_t lda = 0, ldb = 0, ldc = 0;
  bool aTransposed = false, bTransposed = false, accumulate = false, bf16 = false;

  /// The plan's description, checked: positive sizes, leading dimensions
  /// that hold a row, three distinct arguments; the error names `entry`.
  static StatusOr<LibraryGemm> fromPlan(const plan::GemmCall &call, const std::string &entry) {
    LibraryGemm g;
    g.m = call.m();
    g.n = call.n();
    g.k = call.k();
    g.a = call.a();
    g.b = call.b();
    g.c = call.c();
    g.lda = call.lda();
    g.ldb = call.ldb();
    g.ldc = call.ldc();
    g.aTransposed = call.a_transposed();
    g.bTransposed = call.b_transposed();
    g.accumulate = call.accumulate();
    g.bf16 = call.bf16();
    auto fail = [&](const std::string &why) {
      return Status::error("library GEMM " + entry + ": " + why);
    };
    if (g.m <= 0 || g.n <= 0 || g.k <= 0)
      return fail("sizes " + std::to_string(g.m) + " x " + std::to_string(g.n) + " x " +
                  std::to_string(g.k) + " are not all positive");
    if (g.lda < (g.aTransposed ? g.m : g.k) || g.ldb < (g.bTransposed ? g.k : g.n) || g.ldc < g.n)
      return fail("a leading dimension is shorter than its rows");
    if (g.c == g.a || g.c == g.b)
      return fail("its result is also an operand");
    return g;
  }
  /// Whether every argument index is below `count` (the step's arguments).
  bool argumentsWithin(unsigned count) const { return a < count && b < count && c < count; }
};

} // namespace moec::rt

#endif // MOEC_RUNTIME_CORE_LIBRARYGEMM_H
