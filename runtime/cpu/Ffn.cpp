// Ffn.cpp - one feed-forward block on a row block.
#include "runtime/cpu/Ffn.h"

#include <algorithm>

namespace moec::rt::cpu {

namespace {
/// Y[M, out] = X W^T (+ scale · (X A^T) B^T).
void project(const float *X, const float *W, const Adapter &a, float *Y, int64_t M, int64_t in,
             int64_t out, float *lowRank, Precision precision) {
  linearNT(X, W, Y, M, in, out, 0.0f, precision);
  if (!a.A)
    return;
  linearNT(X, a.A, lowRank, M, in, a.rank, 0.0f, precision);
  gemm(false, true, M, out, a.rank, a.scale, lowRank, a.rank, a.B, a.rank, 1.0f, Y, out, precision);
}
} // namespace

void ffnRows(const float *X, float *Y, int64_t M, int64_t d, int64_t F, const FfnWeights &w,
             Act act, Precision precision, std::vector<float> &scratch) {
  if (M == 0)
    return;
  int64_t rank = std::max({w.a1.rank, w.a2.rank, w.a3.rank});
  size_t need = static_cast<size_t>(M * F * (w.w3 ? 2 : 1) + M * rank);
  if (scratch.size() < need)
    scratch.resize(need);
  float *h1 = scratch.data();
  float *h3 = w.w3 ? h1 + M * F : nullptr;
  float *lowRank = h1 + M * F * (w.w3 ? 2 : 1);
  project(X, w.w1, w.a1, h1, M, d, F, lowRank, precision);
  if (h3)
    project(X, w.w3, w.a3, h3, M, d, F, lowRank, precision);
  withActivation(act, [&](auto kind) {
    if (h3) {
#pragma omp parallel for
      for (int64_t i = 0; i < M * F; ++i)
        h1[i] = activate(kind, h1[i]) * h3[i];
    } else {
#pragma omp parallel for
      for (int64_t i = 0; i < M * F; ++i)
        h1[i] = activate(kind, h1[i]);
    }
  });
  project(h1, w.w2, w.a2, Y, M, F, d, lowRank, precision);
}

void ffnRowsBackward(const float *X, const float *dY, float *dX, int64_t M, int64_t d, int64_t F,
                     const FfnWeights &w, Act act, float *dW1, float *dW2, float *dW3,
                     Precision precision, std::vector<float> &scratch) {
  if (M == 0) {
    std::fill(dW1, dW1 + F * d, 0.0f);
    std::fill(dW2, dW2 + d * F, 0.0f);
    if (dW3)
      std::fill(dW3, dW3 + F * d, 0.0f);
    return;
  }
  bool gated = w.w3 != nullptr;
  size_t need = static_cast<size_t>(M * F * (gated ? 4 : 3));
  if (scratch.size() < need)
    scratch.resize(need);
  float *h1 = scratch.data(), *g = h1 + M * F;
  float *h3 = gated ? g + M * F : nullptr, *dg = gated ? h3 + M * F : g + M * F;
  linearNT(X, w.w1, h1, M, d, F, 0.0f, precision);
  if (gated)
    linearNT(X, w.w3, h3, M, d, F, 0.0f, precision);
  withActivation(act, [&](auto kind) {
#pragma omp parallel for
    for (int64_t i = 0; i < M * F; ++i)
      g[i] = activate(kind, h1[i]) * (gated ? h3[i] : 1.0f);
  });
  // dW2 = dYᵀ g; dg = dY W2.
  gemm(true, false, d, F, M, 1.0f, dY, d, g, F, 0.0f, dW2, F, precision);
  gemm(false, false, M, F, d, 1.0f, dY, d, w.w2, F, 0.0f, dg, F, precision);
  // dh3 = dg ⊙ act(h1) (into h3's place), dh1 = dg ⊙ h3 ⊙ act'(h1) (into g).
  withActivation(act, [&](auto kind) {
    if (gated) {
#pragma omp parallel for
      for (int64_t i = 0; i < M * F; ++i) {
        float upstream = dg[i] * h3[i];
        h3[i] = dg[i] * activate(kind, h1[i]);
        g[i] = upstream * activateGrad(kind, h1[i]);
      }
    } else {
#pragma omp parallel for
      for (int64_t i = 0; i < M * F; ++i)
        g[i] = dg[i] * activateGrad(kind, h1[i]);
    }
  });
  float *dh1 = g, *dh3 = h3;
  gemm(true, false, F, d, M, 1.0f, dh1, F, X, d, 0.0f, dW1, d, precision);
  gemm(false, false, M, d, F, 1.0f, dh1, F, w.w1, d, 0.0f, dX, d, precision);
  if (gated) {
    gemm(true, false, F, d, M, 1.0f, dh3, F, X, d, 0.0f, dW3, d, precision);
    gemm(false, false, M, d, F, 1.0f, dh3, F, w.w3, d, 1.0f, dX, d, precision);
  }
}

} // namespace moec::rt::cpu
