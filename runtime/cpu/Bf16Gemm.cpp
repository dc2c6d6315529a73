// Bf16Gemm.cpp - matrix products with bf16 operands and fp32 sums on the
// CPU: the operands are rounded to bf16 as the GPU's tensor-core tiles round
// them, then multiplied by oneDNN's bf16 matmul (its AMX or AVX512-BF16
// kernels). One primitive per transposition and beta serves every shape:
// its dimensions and leading dimensions are given at run time, so the
// per-expert GEMMs, whose row counts change every step, compile no kernel.
#include "runtime/cpu/Bf16Gemm.h"

#include "runtime/cpu/Bf16Storage.h"
#include "runtime/cpu/Math.h"

#include <omp.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

namespace moec::rt::cpu {

namespace {
using dnnl::memory;

/// An operand's `rows` x `cols` as bf16 bits: as given, or its fp32 values
/// rounded into `packed` (contiguous), across the threads unless already
/// inside a parallel region.
MatrixIn rounded(MatrixIn m, int64_t rows, int64_t cols, std::vector<uint16_t> &packed) {
  if (m.type == DType::bf16)
    return m;
  const float *values = static_cast<const float *>(m.data);
  packed.resize(static_cast<size_t>(rows * cols));
  const bool spread = !omp_in_parallel() && rows * cols >= (int64_t(1) << 15);
  if (m.ld == cols) {
    // Contiguous: blocks of the flat array.
    constexpr int64_t kBlock = 1 << 14;
    int64_t n = rows * cols, blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for if (spread) schedule(static)
    for (int64_t b = 0; b < blocks; ++b)
      roundToBf16(values + b * kBlock, packed.data() + b * kBlock,
                  std::min(kBlock, n - b * kBlock));
  } else {
#pragma omp parallel for if (spread) schedule(static)
    for (int64_t r = 0; r < rows; ++r)
      roundToBf16(values + r * m.ld, packed.data() + r * cols, cols);
  }
  return MatrixIn(packed.data(), cols);
}

dnnl::engine &cpuEngine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

memory::data_type typeOf(DType type) {
  return type == DType::bf16 ? memory::data_type::bf16 : memory::data_type::f32;
}

/// The matmul for one transposition of each operand, one beta (0: C is
/// written, not read) and one result type, with every dimension, leading
/// dimension and alpha given at run time; made once, then shared
/// (primitives are thread-safe).
const dnnl::matmul &matmulFor(bool transA, bool transB, float beta, DType result) {
  static std::mutex mutex;
  static std::map<std::tuple<bool, bool, float, DType>, dnnl::matmul> made;
  std::lock_guard<std::mutex> lock(mutex);
  auto key = std::make_tuple(transA, transB, beta, result);
  auto found = made.find(key);
  if (found != made.end())
    return found->second;
  const memory::dim any = DNNL_RUNTIME_DIM_VAL;
  auto strides = [&](bool transposed) {
    return transposed ? memory::dims{1, any} : memory::dims{any, 1};
  };
  memory::desc a({any, any}, memory::data_type::bf16, strides(transA));
  memory::desc b({any, any}, memory::data_type::bf16, strides(transB));
  memory::desc c({any, any}, typeOf(result), strides(false));
  dnnl::primitive_attr attr;
  attr.set_output_scales(0, {DNNL_RUNTIME_F32_VAL});
  if (beta != 0.0f) {
    dnnl::post_ops sum;
    sum.append_sum(beta);
    attr.set_post_ops(sum);
  }
  dnnl::matmul::primitive_desc described(dnnl::matmul::desc(a, b, c), attr, cpuEngine());
  return made.emplace(key, dnnl::matmul(described)).first->second;
}

void matmulBf16(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, MatrixIn A,
                MatrixIn B, float beta, MatrixOut C) {
  const dnnl::matmul &matmul = matmulFor(transA, transB, beta, C.type);
  dnnl::engine &engine = cpuEngine();
  auto strides = [](bool transposed, int64_t ld) {
    return transposed ? memory::dims{1, ld} : memory::dims{ld, 1};
  };
  // A is [M, K] (stored [K, M] when transposed), B is [K, N] (stored [N, K]
  // when transposed).
  memory a({{M, K}, memory::data_type::bf16, strides(transA, A.ld)}, engine,
           const_cast<void *>(A.data));
  memory b({{K, N}, memory::data_type::bf16, strides(transB, B.ld)}, engine,
           const_cast<void *>(B.data));
  memory c({{M, N}, typeOf(C.type), strides(false, C.ld)}, engine, C.data);
  memory scale({{1}, memory::data_type::f32, memory::dims{1}}, engine, &alpha);
  thread_local dnnl::stream stream(engine); // this thread's
  matmul.execute(stream, {{DNNL_ARG_SRC, a},
                          {DNNL_ARG_WEIGHTS, b},
                          {DNNL_ARG_DST, c},
                          {DNNL_ARG_ATTR_OUTPUT_SCALES, scale}});
  stream.wait();
}
/// The fp32 sums op(A) op(B) (output scale 1, beta 0) into this thread's
/// scratch, [M, N] contiguous: one buffer, kept mapped, for both the scaled
/// fp32 results and the bf16 results below.
float *sumsInScratch(bool transA, bool transB, int64_t M, int64_t N, int64_t K, MatrixIn A,
                     MatrixIn B) {
  thread_local std::vector<float> sums; // this thread's
  sums.resize(static_cast<size_t>(M * N));
  matmulBf16(transA, transB, M, N, K, 1.0f, A, B, 0.0f, MatrixOut(sums.data(), N));
  return sums.data();
}

/// C = alpha · op(A) op(B) + beta · C for fp32 C: the products with an
/// output scale of 1 (into C itself when beta = 0, else into this thread's
/// scratch), then each sum scaled.
void scaledAfterwards(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                      MatrixIn A, MatrixIn B, float beta, MatrixOut C) {
  float *c = static_cast<float *>(C.data);
  if (beta == 0.0f) {
    matmulBf16(transA, transB, M, N, K, 1.0f, A, B, 0.0f, C);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j)
        c[i * C.ld + j] *= alpha;
    return;
  }
  const float *sums = sumsInScratch(transA, transB, M, N, K, A, B);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j)
      c[i * C.ld + j] = alpha * sums[i * N + j] + beta * c[i * C.ld + j];
}

/// C = alpha · op(A) op(B) for bf16 C: the fp32 sums into this thread's
/// scratch (sumsInScratch), scaled, then rounded row by row. oneDNN 2.6's matmul into a bf16
/// destination allocates an fp32 buffer of M x N on every call, whose fresh pages fault on first
/// touch: on the 2-core Zen 5 VM, it ran a training step's forward up projections at half the rate
/// of the same products into fp32, and unevenly (bench/results/2026-11-29-cpu-bf16-result.md). This
/// scratch stays mapped.
void roundedAfterwards(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                       MatrixIn A, MatrixIn B, MatrixOut C) {
  float *sums = sumsInScratch(transA, transB, M, N, K, A, B);
  for (int64_t i = 0; i < M; ++i) {
    float *row = sums + i * N;
    if (alpha != 1.0f)
      for (int64_t j = 0; j < N; ++j)
        row[j] *= alpha;
    roundToBf16(row, static_cast<uint16_t *>(C.data) + i * C.ld, N);
  }
}
} // namespace

bool bf16ProductsInHardware() {
  static const bool inHardware = [] {
    unsigned isa = dnnl_get_effective_cpu_isa();
    return (isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16;
  }();
  return inHardware;
}

void gemmBf16(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, MatrixIn A,
              MatrixIn B, float beta, MatrixOut C) {
  thread_local std::vector<uint16_t> packedA, packedB; // this thread's
  MatrixIn a = rounded(A, transA ? K : M, transA ? M : K, packedA);
  MatrixIn b = rounded(B, transB ? N : K, transB ? K : N, packedB);
  if (bf16ProductsInHardware()) {
    try {
      if (C.type == DType::bf16) {
        // gemm() allows no beta for a bf16 result.
        roundedAfterwards(transA, transB, M, N, K, alpha, a, b, C);
        return;
      }
      if (alpha != 1.0f) {
        // oneDNN 2.6's bf16 matmul takes a slow path for an output scale
        // other than 1 (9x slower on AMX at attention's 128 x 128 x 64):
        // multiply with 1, then scale the fp32 sums (and add beta·C).
        scaledAfterwards(transA, transB, M, N, K, alpha, a, b, beta, C);
        return;
      }
      matmulBf16(transA, transB, M, N, K, alpha, a, b, beta, C);
      return;
    } catch (const dnnl::error &failure) {
      std::fprintf(stderr,
                   "moec: internal error: oneDNN's bf16 matmul (%c%c, M=%lld N=%lld K=%lld, "
                   "lda=%lld ldb=%lld ldc=%lld) failed: %s (status %d)\n",
                   transA ? 'T' : 'N', transB ? 'T' : 'N', (long long)M, (long long)N, (long long)K,
                   (long long)a.ld, (long long)b.ld, (long long)C.ld, failure.what(),
                   int(failure.status));
      std::abort();
    }
  }
  // No bf16 instructions: sgemm on the rounded operands (gemm widens them).
  gemm(transA, transB, M, N, K, alpha, a, b, beta, C, Precision::fp32);
}

} // namespace moec::rt::cpu
