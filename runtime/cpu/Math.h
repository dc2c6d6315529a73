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
#include <string>
#include <vector>

namespace moec::rt::cpu {

/// The arithmetic of an op's matrix products (its `moe.precision`): fp32,
/// or bf16 operands (fp32 values rounded to nearest even, as the GPU's
/// tensor-core tiles round them) with products summed in fp32.
enum class Precision { fp32, bf16 };

/// C[M, N] = alpha · op(A) · op(B) + beta · C, row-major, through oneDNN,
/// whose kernels follow the CPU's features (AVX2, AVX-512, AMX), not a table
/// of CPU models: its sgemm (fp32), or for bf16 its bf16 matmul (AMX or
/// AVX512-BF16; on CPUs with neither, sgemm on the rounded operands, the
/// same products). beta = 0 never reads C.
void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
          int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc,
          Precision precision = Precision::fp32);

/// Which GEMMs run and on which instruction set: "oneDNN 2.6.3 sgemm and
/// bf16 matmul, avx512_core_amx kernels".
std::string gemmDescription();

/// Y[M, out] = X[M, in] · W[out, in]ᵀ (+ beta · Y).
inline void linearNT(const float *X, const float *W, float *Y, int64_t M, int64_t in, int64_t out,
                     float beta = 0.0f, Precision precision = Precision::fp32) {
  gemm(false, true, M, out, in, 1.0f, X, in, W, in, beta, Y, out, precision);
}

enum class Act { relu, gelu, gelu_tanh, silu, sigmoid };
Act parseActivation(const std::string &name);

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
    return x / (1.0f + std::exp(-x));
  case Act::sigmoid:
    return 1.0f / (1.0f + std::exp(-x));
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
    float sig = 1.0f / (1.0f + std::exp(-x));
    return sig * (1.0f + x * (1.0f - sig));
  }
  case Act::sigmoid: {
    float sig = 1.0f / (1.0f + std::exp(-x));
    return sig * (1.0f - sig);
  }
  }
  return 1.0f;
}

/// act(x) and act'(x) together, sharing the transcendental functions.
inline void activateWithGrad(Act act, float x, float &value, float &grad) {
  if (act == Act::silu) {
    float sig = 1.0f / (1.0f + std::exp(-x));
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
