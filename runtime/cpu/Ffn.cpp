// Ffn.cpp - one feed-forward block on a row block.
#include "runtime/cpu/Ffn.h"

#include <algorithm>

namespace moec::rt::cpu {

namespace {
/// Y[M, out] = X W^T (+ scale · (X A^T) B^T).
void project(const float *X, const float *W, const Adapter &a, float *Y,
             int64_t M, int64_t in, int64_t out, float *lowRank) {
  linearNT(X, W, Y, M, in, out);
  if (!a.A)
    return;
  linearNT(X, a.A, lowRank, M, in, a.rank);
  gemm(false, true, M, out, a.rank, a.scale, lowRank, a.rank, a.B, a.rank,
       1.0f, Y, out);
}
} // namespace

void ffnRows(const float *X, float *Y, int64_t M, int64_t d, int64_t F,
             const FfnWeights &w, Act act, std::vector<float> &scratch) {
  if (M == 0)
    return;
  int64_t rank = std::max({w.a1.rank, w.a2.rank, w.a3.rank});
  size_t need = static_cast<size_t>(M * F * (w.w3 ? 2 : 1) + M * rank);
  if (scratch.size() < need)
    scratch.resize(need);
  float *h1 = scratch.data();
  float *h3 = w.w3 ? h1 + M * F : nullptr;
  float *lowRank = h1 + M * F * (w.w3 ? 2 : 1);
  project(X, w.w1, w.a1, h1, M, d, F, lowRank);
  if (h3) {
    project(X, w.w3, w.a3, h3, M, d, F, lowRank);
    for (int64_t i = 0; i < M * F; ++i)
      h1[i] = activate(act, h1[i]) * h3[i];
  } else {
    for (int64_t i = 0; i < M * F; ++i)
      h1[i] = activate(act, h1[i]);
  }
  project(h1, w.w2, w.a2, Y, M, F, d, lowRank);
}

} // namespace moec::rt::cpu
