// Math.cpp - GEMM (oneDNN, whose kernels are chosen by the CPU's features
// at run time) and row reductions.
#include "runtime/cpu/Math.h"

#include "runtime/cpu/Bf16Gemm.h"
#include "runtime/cpu/Bf16Storage.h"

#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace moec::rt::cpu {

namespace {
/// C = alpha · op(A) · op(B) + beta · C in fp32 through oneDNN's sgemm.
void sgemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
           int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
  dnnl_status_t status = dnnl_sgemm(transA ? 'T' : 'N', transB ? 'T' : 'N', M, N, K, alpha, A, lda,
                                    B, ldb, beta, C, ldc);
  if (status != dnnl_success) {
    // Only inconsistent shapes fail, which the kernels never pass.
    std::fprintf(stderr,
                 "moec: internal error: oneDNN sgemm (%c%c, M=%lld N=%lld K=%lld, lda=%lld "
                 "ldb=%lld ldc=%lld) failed with status %d\n",
                 transA ? 'T' : 'N', transB ? 'T' : 'N', (long long)M, (long long)N, (long long)K,
                 (long long)lda, (long long)ldb, (long long)ldc, int(status));
    std::abort();
  }
}

/// An operand's `rows` x `cols` as fp32: in place, or bf16 bits widened into
/// `scratch` (leading dimension `cols`).
MatrixIn widened(MatrixIn m, int64_t rows, int64_t cols, std::vector<float> &scratch) {
  if (m.type != DType::bf16)
    return m;
  scratch.resize(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    widenBf16(static_cast<const uint16_t *>(m.data) + r * m.ld, scratch.data() + r * cols, cols);
  return MatrixIn(scratch.data(), cols);
}
} // namespace

void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, MatrixIn A,
          MatrixIn B, float beta, MatrixOut C, Precision precision) {
  if (M == 0 || N == 0)
    return;
  if (C.type == DType::bf16 && beta != 0.0f) {
    std::fprintf(stderr, "moec: internal error: a bf16 GEMM result with beta = %g\n", beta);
    std::abort();
  }
  if (K == 0) {
    // No terms: C = beta · C, where beta = 0 means C's old contents are not
    // read at all (as in BLAS): +0, whatever bits the buffer held (a NaN, a
    // -0 left by an earlier step in a reused arena).
    for (int64_t i = 0; i < M; ++i) {
      if (C.type == DType::bf16) {
        std::fill_n(static_cast<uint16_t *>(C.data) + i * C.ld, N, uint16_t(0));
        continue;
      }
      float *row = static_cast<float *>(C.data) + i * C.ld;
      for (int64_t j = 0; j < N; ++j)
        row[j] = beta == 0.0f ? 0.0f : row[j] * beta;
    }
    return;
  }
  if (precision == Precision::bf16) {
    gemmBf16(transA, transB, M, N, K, alpha, A, B, beta, C);
    return;
  }
  // fp32 products of operands that may be stored in bf16; a bf16 result is
  // computed in fp32, then rounded.
  thread_local std::vector<float> wideA, wideB, wideC; // this thread's
  MatrixIn a = widened(A, transA ? K : M, transA ? M : K, wideA);
  MatrixIn b = widened(B, transB ? N : K, transB ? K : N, wideB);
  if (C.type != DType::bf16) {
    sgemm(transA, transB, M, N, K, alpha, static_cast<const float *>(a.data), a.ld,
          static_cast<const float *>(b.data), b.ld, beta, static_cast<float *>(C.data), C.ld);
    return;
  }
  wideC.resize(static_cast<size_t>(M * N));
  sgemm(transA, transB, M, N, K, alpha, static_cast<const float *>(a.data), a.ld,
        static_cast<const float *>(b.data), b.ld, 0.0f, wideC.data(), N);
  for (int64_t i = 0; i < M; ++i)
    roundToBf16(wideC.data() + i * N, static_cast<uint16_t *>(C.data) + i * C.ld, N);
}

namespace {
const char *isaName(dnnl_cpu_isa_t isa) {
  switch (isa) {
  case dnnl_cpu_isa_sse41:
    return "sse41";
  case dnnl_cpu_isa_avx:
    return "avx";
  case dnnl_cpu_isa_avx2:
    return "avx2";
  case dnnl_cpu_isa_avx2_vnni:
    return "avx2_vnni";
  case dnnl_cpu_isa_avx512_core:
    return "avx512_core";
  case dnnl_cpu_isa_avx512_core_vnni:
    return "avx512_core_vnni";
  case dnnl_cpu_isa_avx512_core_bf16:
    return "avx512_core_bf16";
  case dnnl_cpu_isa_avx512_core_amx:
    return "avx512_core_amx";
  default:
    return "other";
  }
}
} // namespace

std::string gemmDescription() {
  const dnnl_version_t *v = dnnl_version();
  return "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
         std::to_string(v->patch) +
         (bf16ProductsInHardware() ? " sgemm and bf16 matmul, "
                                   : " sgemm (bf16 products: sgemm of rounded operands), ") +
         isaName(dnnl_get_effective_cpu_isa()) + " kernels";
}

Act parseActivation(const std::string &name) {
  if (name == "relu") return Act::relu;
  if (name == "gelu") return Act::gelu;
  if (name == "gelu_tanh") return Act::gelu_tanh;
  if (name == "sigmoid")
    return Act::sigmoid;
  return Act::silu;
}

float softmaxRow(float *row, int64_t n, const float *extra) {
  float maximum = *std::max_element(row, row + n);
  if (extra)
    maximum = std::max(maximum, *extra);
  float extraTerm = extra ? std::exp(*extra - maximum) : 0.0f;
  double sum = extraTerm;
  for (int64_t i = 0; i < n; ++i) {
    row[i] = std::exp(row[i] - maximum);
    sum += row[i];
  }
  float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i)
    row[i] *= inv;
  return extraTerm * inv;
}

float visibleSoftmax(float *row, int64_t S, int64_t i, const AttentionMask &mask,
                     const float *sink) {
  int64_t end = mask.end(i, S), begin = mask.begin(i);
  if (mask.temperatureFloor > 0) {
    float temperature = mask.temperature(i);
    for (int64_t j = begin; j < end; ++j)
      row[j] *= temperature;
  }
  float sinkProbability = softmaxRow(row + begin, end - begin, sink);
  std::fill(row, row + begin, 0.0f);
  std::fill(row + end, row + S, 0.0f);
  return sinkProbability;
}

float logSumExp(const float *row, int64_t n) {
  float maximum = *std::max_element(row, row + n);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i)
    sum += std::exp(static_cast<double>(row[i] - maximum));
  return maximum + static_cast<float>(std::log(sum));
}

} // namespace moec::rt::cpu
