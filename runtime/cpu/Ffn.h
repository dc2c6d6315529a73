// Ffn.h - one feed-forward block on a row block, shared by dense, routed,
// shared and LoRA experts.
#ifndef MOEC_RUNTIME_CPU_FFN_H
#define MOEC_RUNTIME_CPU_FFN_H

#include "runtime/cpu/Math.h"

#include <vector>

namespace moec::rt::cpu {

/// Optional rank-r adapter on one projection: W + scale · B A.
struct Adapter {
  const float *A = nullptr; // [r, in]
  const float *B = nullptr; // [out, r]
  int64_t rank = 0;
  float scale = 0;
};

struct FfnWeights {
  const float *w1 = nullptr; // [F, d], activated
  const float *w2 = nullptr; // [d, F]
  const float *w3 = nullptr; // [F, d], gated (may be null)
  Adapter a1, a2, a3;
};

/// Y[M, d] = W2 · (act(W1 x) [⊙ W3 x]) for M rows of X[M, d], its matrix
/// products in `precision`; `scratch` is resized as needed and reused across
/// calls.
void ffnRows(const float *X, float *Y, int64_t M, int64_t d, int64_t F, const FfnWeights &w,
             Act act, Precision precision, std::vector<float> &scratch);

/// Gradients of ffnRows (no adapters): dX[M, d] and the weight gradients
/// dW1 [F, d], dW2 [d, F], dW3 [F, d] (written, not accumulated), from the
/// inputs X and the output gradient dY. Recomputes the hidden activations.
void ffnRowsBackward(const float *X, const float *dY, float *dX, int64_t M, int64_t d, int64_t F,
                     const FfnWeights &w, Act act, float *dW1, float *dW2, float *dW3,
                     Precision precision, std::vector<float> &scratch);

} // namespace moec::rt::cpu

#endif // MOEC_RUNTIME_CPU_FFN_H
