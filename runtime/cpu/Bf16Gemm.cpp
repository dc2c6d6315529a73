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

/// `rows` x `cols` of `src` (leading dimension `ld`) rounded into `dst`,
/// contiguous; across the threads unless already inside a parallel region.
void packRounded(const float *src, int64_t rows, int64_t cols, int64_t ld,
                 std::vector<uint16_t> &dst) {
  dst.resize(static_cast<size_t>(rows * cols));
  const bool spread = !omp_in_parallel() && rows * cols >= (int64_t(1) << 15);
  if (ld == cols) {
    // Contiguous: blocks of the flat array.
    constexpr int64_t kBlock = 1 << 14;
    int64_t n = rows * cols, blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for if (spread) schedule(static)
    for (int64_t b = 0; b < blocks; ++b)
      roundToBf16(src + b * kBlock, dst.data() + b * kBlock, std::min(kBlock, n - b * kBlock));
    return;
  }
#pragma omp parallel for if (spread) schedule(static)
  for (int64_t r = 0; r < rows; ++r)
    roundToBf16(src + r * ld, dst.data() + r * cols, cols);
}

dnnl::engine &cpuEngine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

/// The matmul for one transposition of each operand and one beta (0: C is
/// written, not read), with every dimension, leading dimension and alpha
/// given at run time; made once, then shared (primitives are thread-safe).
const dnnl::matmul &matmulFor(bool transA, bool transB, float beta) {
  static std::mutex mutex;
  static std::map<std::tuple<bool, bool, float>, dnnl::matmul> made;
  std::lock_guard<std::mutex> lock(mutex);
  auto key = std::make_tuple(transA, transB, beta);
  auto found = made.find(key);
  if (found != made.end())
    return found->second;
  const memory::dim any = DNNL_RUNTIME_DIM_VAL;
  auto strides = [&](bool transposed) {
    return transposed ? memory::dims{1, any} : memory::dims{any, 1};
  };
  memory::desc a({any, any}, memory::data_type::bf16, strides(transA));
  memory::desc b({any, any}, memory::data_type::bf16, strides(transB));
  memory::desc c({any, any}, memory::data_type::f32, strides(false));
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

void matmulBf16(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                const uint16_t *A, const uint16_t *B, float beta, float *C, int64_t ldc) {
  const dnnl::matmul &matmul = matmulFor(transA, transB, beta);
  dnnl::engine &engine = cpuEngine();
  // Packed operands: A is [M, K] (stored [K, M] when transposed), B is
  // [K, N] (stored [N, K] when transposed).
  memory a({{M, K}, memory::data_type::bf16, transA ? memory::dims{1, M} : memory::dims{K, 1}},
           engine, const_cast<uint16_t *>(A));
  memory b({{K, N}, memory::data_type::bf16, transB ? memory::dims{1, K} : memory::dims{N, 1}},
           engine, const_cast<uint16_t *>(B));
  memory c({{M, N}, memory::data_type::f32, memory::dims{ldc, 1}}, engine, C);
  memory scale({{1}, memory::data_type::f32, memory::dims{1}}, engine, &alpha);
  thread_local dnnl::stream stream(engine); // this thread's
  matmul.execute(stream, {{DNNL_ARG_SRC, a},
                          {DNNL_ARG_WEIGHTS, b},
                          {DNNL_ARG_DST, c},
                          {DNNL_ARG_ATTR_OUTPUT_SCALES, scale}});
  stream.wait();
}
} // namespace

bool bf16ProductsInHardware() {
  static const bool inHardware = [] {
    unsigned isa = dnnl_get_effective_cpu_isa();
    return (isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16;
  }();
  return inHardware;
}

void gemmBf16(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
              const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
              int64_t ldc) {
  thread_local std::vector<uint16_t> packedA, packedB; // this thread's
  packRounded(A, transA ? K : M, transA ? M : K, lda, packedA);
  packRounded(B, transB ? N : K, transB ? K : N, ldb, packedB);
  if (bf16ProductsInHardware()) {
    try {
      matmulBf16(transA, transB, M, N, K, alpha, packedA.data(), packedB.data(), beta, C, ldc);
      return;
    } catch (const dnnl::error &failure) {
      std::fprintf(stderr,
                   "moec: internal error: oneDNN's bf16 matmul (%c%c, M=%lld N=%lld K=%lld, "
                   "ldc=%lld) failed: %s (status %d)\n",
                   transA ? 'T' : 'N', transB ? 'T' : 'N', (long long)M, (long long)N, (long long)K,
                   (long long)ldc, failure.what(), int(failure.status));
      std::abort();
    }
  }
  // No bf16 instructions: the rounded operands, widened again, through sgemm.
  auto widen = [](const std::vector<uint16_t> &bits) {
    std::vector<float> values(bits.size());
    widenBf16(bits.data(), values.data(), static_cast<int64_t>(bits.size()));
    return values;
  };
  std::vector<float> a = widen(packedA), b = widen(packedB);
  gemm(transA, transB, M, N, K, alpha, a.data(), transA ? M : K, b.data(), transB ? K : N, beta, C,
       ldc, Precision::fp32);
}

} // namespace moec::rt::cpu
