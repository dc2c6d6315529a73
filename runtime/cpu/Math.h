// Math.h - the numerical building blocks the CPU kernels share: GEMM,
// activations, row softmax (random numbers: runtime/core/Random.h).
#ifndef MOEC_RUNTIME_CPU_MATH_H
#define MOEC_RUNTIME_CPU_MATH_H

#include "runtime/core/Random.h"
#include "runtime/core/Tensor.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

namespace moec::rt::cpu {

/// The arithmetic of an op's matrix products (its `moe.precision`): fp32,
/// or bf16 operands (fp32 values rounded to nearest even, as the GPU's
/// tensor-core tiles round them) with products summed in fp32.
enum class Precision { fp32, bf16 };

/// A matrix operand of gemm, row-major with leading dimension `ld`: fp32
/// values, or bf16 bits (a tensor the plan stores in bf16, or rows a kernel
/// rounded once for several products).
struct MatrixIn {
  const void *data = nullptr;
  int64_t ld = 0;
  DType type = DType::f32;
  MatrixIn(const float *values, int64_t ld) : data(values), ld(ld) {}
  MatrixIn(const uint16_t *bf16Bits, int64_t ld) : data(bf16Bits), ld(ld), type(DType::bf16) {}
  /// The submatrix from (row, column).
  MatrixIn at(int64_t row, int64_t column) const {
    MatrixIn sub = *this;
    sub.data = static_cast<const char *>(data) + (row * ld + column) * dtypeSize(type);
    return sub;
  }
};

/// Where gemm writes C: fp32, or bf16 (rounded to nearest even; beta = 0).
struct MatrixOut {
  void *data = nullptr;
  int64_t ld = 0;
  DType type = DType::f32;
  MatrixOut(float *values, int64_t ld) : data(values), ld(ld) {}
  MatrixOut(uint16_t *bf16Bits, int64_t ld) : data(bf16Bits), ld(ld), type(DType::bf16) {}
  /// The submatrix from (row, column).
  MatrixOut at(int64_t row, int64_t column) const {
    MatrixOut sub = *this;
    sub.data = static_cast<char *>(data) + (row * ld + column) * dtypeSize(type);
    return sub;
  }
};

/// C[M, N] = alpha · op(A) · op(B) + beta · C, row-major, through oneDNN,
/// whose kernels follow the CPU's features (AVX2, AVX-512, AMX), not a table
/// of CPU models: its sgemm (fp32), or for bf16 its bf16 matmul (AMX or
/// AVX512-BF16; on CPUs with neither, sgemm on the rounded operands, the
/// same products). beta = 0 never reads C.
void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, MatrixIn A,
          MatrixIn B, float beta, MatrixOut C, Precision precision);

/// The same with fp32 operands and result.
inline void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                 const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                 int64_t ldc, Precision precision = Precision::fp32) {
  gemm(transA, transB, M, N, K, alpha, MatrixIn(A, lda), MatrixIn(B, ldb), beta, MatrixOut(C, ldc),
       precision);
}

/// Which GEMMs run and on which instruction set: "oneDNN 2.6.3 sgemm and
/// bf16 matmul, avx512_core_amx kernels".
std::string gemmDescription();

/// Y[M, out] = X[M, in] · W[out, in]ᵀ (+ beta · Y).
inline void linearNT(const float *X, const float *W, float *Y, int64_t M, int64_t in, int64_t out,
                     float beta = 0.0f, Precision precision = Precision::fp32) {
  gemm(false, true, M, out, in, 1.0f, X, in, W, in, beta, Y, out, precision);
}

/// Compiles a function (its inlined callees too) for AVX-512, AVX2 and
/// baseline x86-64, the CPU's features choosing one when the library loads
/// (GCC's function multiversioning): for elementwise loops that vectorise.
/// With AVX2 and up, a · b + c may fuse into one rounding (FMA), so such a
/// loop's bits depend on the CPU's kind, as oneDNN's do, not on threads.
#if defined(__x86_64__) && defined(__GNUC__)
#define MOEC_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MOEC_VECTOR_CLONES
#endif

enum class Act { relu, gelu, gelu_tanh, silu, sigmoid };
Act parseActivation(const std::string &name);

/// Calls `fn(kind)` with the activation as a compile-time constant
/// (std::integral_constant, which converts to Act), so that a loop written
/// inside `fn` is compiled per activation, its switch folded away, and
/// vectorises.
template <typename Fn> void withActivation(Act act, Fn fn) {
  switch (act) {
  case Act::relu:
    return fn(std::integral_constant<Act, Act::relu>{});
  case Act::gelu:
    return fn(std::integral_constant<Act, Act::gelu>{});
  case Act::gelu_tanh:
    return fn(std::integral_constant<Act, Act::gelu_tanh>{});
  case Act::silu:
    return fn(std::integral_constant<Act, Act::silu>{});
  case Act::sigmoid:
    return fn(std::integral_constant<Act, Act::sigmoid>{});
  }
}

/// e^x in fp32 within 1 ulp of the correctly rounded value (checked on
/// every float of [-87, 88.7]), as glibc's expf, but without a call or a
/// branch, so that loops over it vectorise: x = n ln 2 + r (Cody-Waite),
/// e^r by Cephes' polynomial, 2^n through the exponent bits (in two factors,
/// so that n = 128 does not overflow). Above 88.72 it is inf, as glibc's;
/// below -87 it is 0 where glibc's falls through subnormals (under 1.7e-38),
/// which x86 computes with at a hundredth of the speed. NaN goes through; its
/// exponent is computed from -87 so that the integer conversion stays defined.
inline float polyExp(float x) {
  float clamped = x > -87.0f ? x : -87.0f;
  clamped = clamped < 88.72283f ? clamped : 88.72283f;
  // n = round(x / ln 2) by the 1.5 · 2^23 trick (no call to rint).
  float n = (clamped * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = clamped - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  float y = p * (r * r) + r + 1.0f;
  int32_t whole = static_cast<int32_t>(n), half = whole / 2;
  uint32_t bits1 = uint32_t(half + 127) << 23, bits2 = uint32_t(whole - half + 127) << 23;
  float scale1, scale2;
  std::memcpy(&scale1, &bits1, sizeof(scale1));
  std::memcpy(&scale2, &bits2, sizeof(scale2));
  float result = y * scale1 * scale2;
  result = x > 88.72283f ? std::numeric_limits<float>::infinity() : result;
  result = x < -87.0f ? 0.0f : result;
  return x == x ? result : x;
}

inline float activate(Act act, float x) {
  switch (act) {
  case Act::relu:
    return x > 0 ? x : 0;
  case Act::gelu:
    return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f));
  case Act::gelu_tanh:
    return 0.5f * x *
           (1.0f + std::tanh(0.7978845608028654f * (x + 0.044715f * x * x * x)));
  case Act::silu:
    return x / (1.0f + polyExp(-x));
  case Act::sigmoid:
    return 1.0f / (1.0f + polyExp(-x));
  }
  return x;
}

/// d act(x) / dx.
inline float activateGrad(Act act, float x) {
  switch (act) {
  case Act::relu:
    return x > 0 ? 1.0f : 0.0f;
  case Act::gelu: {
    float cdf = 0.5f * (1.0f + std::erf(x * 0.70710678118654752f));
    float pdf = 0.3989422804014327f * std::exp(-0.5f * x * x);
    return cdf + x * pdf;
  }
  case Act::gelu_tanh: {
    const float c = 0.7978845608028654f;
    float inner = c * (x + 0.044715f * x * x * x);
    float t = std::tanh(inner);
    return 0.5f * (1.0f + t) +
           0.5f * x * (1.0f - t * t) * c * (1.0f + 3.0f * 0.044715f * x * x);
  }
  case Act::silu: {
    float sig = 1.0f / (1.0f + polyExp(-x));
    return sig * (1.0f + x * (1.0f - sig));
  }
  case Act::sigmoid: {
    float sig = 1.0f / (1.0f + polyExp(-x));
    return sig * (1.0f - sig);
  }
  }
  return 1.0f;
}

/// act(x) and act'(x) together, sharing the transcendental functions.
inline void activateWithGrad(Act act, float x, float &value, float &grad) {
  if (act == Act::silu) {
    float sig = 1.0f / (1.0f + polyExp(-x));
    value = x * sig;
    grad = sig * (1.0f + x * (1.0f - sig));
    return;
  }
  value = activate(act, x);
  grad = activateGrad(act, x);
}

/// gpt-oss's clamped SwiGLU of one gate/up pair:
/// (clamp(up, −limit, limit) + 1) · g σ(alpha g), g = min(gate, limit).
inline float clampedSwiglu(float gate, float up, float alpha, float limit) {
  float g = std::min(gate, limit), u = std::min(std::max(up, -limit), limit);
  float glu = g * (1.0f / (1.0f + std::exp(-g * alpha)));
  return (u + 1.0f) * glu;
}

/// Its gradient with respect to the gate and the up projection, given the
/// result's `dy` (zero beyond the clamps' bounds, as PyTorch's clamp).
inline void clampedSwigluGrad(float gate, float up, float dy, float alpha, float limit,
                              float &dgate, float &dup) {
  float g = std::min(gate, limit), u = std::min(std::max(up, -limit), limit);
  float sig = 1.0f / (1.0f + std::exp(-g * alpha));
  dgate = gate <= limit ? dy * (u + 1.0f) * sig * (1.0f + g * alpha * (1.0f - sig)) : 0.0f;
  dup = up >= -limit && up <= limit ? dy * g * sig : 0.0f;
}

/// Sets every byte of `t` to zero.
inline void zero(const TensorRef &t) { std::memset(t.data, 0, t.bytes()); }

/// Σ term(i) over [0, n) in double, the same bits for any thread count and
/// any run: blocks of `block` indices are summed in parallel, the block sums
/// in order. (An OpenMP `reduction` combines per-thread sums in the order the
/// threads finish, which would break bit-identical resumption.)
template <typename Term>
double deterministicSum(int64_t n, int64_t block, const Term &term) {
  int64_t numBlocks = (n + block - 1) / block;
  std::vector<double> partial(numBlocks);
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < numBlocks; ++b) {
    // Eight running sums in a fixed order, so that the block vectorises.
    constexpr int kLanes = 8;
    double lanes[kLanes] = {};
    int64_t i = b * block, end = std::min(n, (b + 1) * block);
    for (; i + kLanes <= end; i += kLanes)
      for (int l = 0; l < kLanes; ++l)
        lanes[l] += term(i + l);
    for (; i < end; ++i)
      lanes[0] += term(i);
    double sum = 0;
    for (double lane : lanes)
      sum += lane;
    partial[b] = sum;
  }
  double total = 0;
  for (double p : partial)
    total += p;
  return total;
}

/// In-place numerically stable softmax of one row; with an `extra` logit
/// (an attention sink) the softmax has that one more term, whose
/// probability it returns (0 without).
float softmaxRow(float *row, int64_t n, const float *extra = nullptr);

/// Which keys each query of moe.attention sees, and the queries'
/// temperature (its mask attributes).
struct AttentionMask {
  bool causal = false;
  int64_t window = 0, chunk = 0; // 0: none
  int64_t temperatureFloor = 0;  // 0: no temperature
  float temperatureScale = 0.0f;
  /// Keys [begin, end) of query i among S: j ≤ i when causal; i − j <
  /// window; j in i's chunk.
  int64_t begin(int64_t i) const {
    if (window > 0)
      return std::max<int64_t>(0, i - window + 1);
    return chunk > 0 ? i / chunk * chunk : 0;
  }
  int64_t end(int64_t i, int64_t S) const { return causal ? i + 1 : S; }
  /// Llama 4's factor on query i: log(floor((i + 1) / F) + 1) · s + 1, in
  /// f32 as transformers computes it (1 without a temperature).
  float temperature(int64_t i) const {
    if (temperatureFloor == 0)
      return 1.0f;
    return std::log1p(
               std::floor((static_cast<float>(i) + 1.0f) / static_cast<float>(temperatureFloor))) *
               temperatureScale +
           1.0f;
  }
};

/// Attention row `i` of `S` scores: times the query's temperature, the
/// softmax over the keys query i sees, zeros elsewhere. With a `sink`
/// logit (attention sinks) the softmax has that one more term, whose
/// probability it returns (0 without).
float visibleSoftmax(float *row, int64_t S, int64_t i, const AttentionMask &mask,
                     const float *sink = nullptr);

/// log Σ exp(row).
float logSumExp(const float *row, int64_t n);

using rt::normal01;
using rt::uniform01;

} // namespace moec::rt::cpu

#endif // MOEC_RUNTIME_CPU_MATH_H
