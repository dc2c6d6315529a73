// SparseMixer.h - the masked gates of one SparseMixer pick (PhiMoE's
// sparsemixer), shared by moe.sparsemixer_route and its gradient.
#ifndef MOEC_RUNTIME_CPU_SPARSEMIXER_H
#define MOEC_RUNTIME_CPU_SPARSEMIXER_H

#include "runtime/cpu/Math.h"

#include <cmath>
#include <cstdint>
#include <limits>

namespace moec::rt::cpu {

/// `masked` = the logits `l` (`E` of them) with `excluded` (the earlier
/// pick, or -1) and every expert trailing the best remaining one, `m`, by
/// more than 2·eps relative, `(m − l_e) / max(|l_e|, m) > 2·eps`, set to −∞;
/// `p` = its softmax. Returns that best expert (the lower index on ties).
inline int32_t sparseMixerGates(const float *l, int64_t E, int32_t excluded, float eps,
                                float *masked, float *p) {
  int32_t best = -1;
  for (int32_t e = 0; e < E; ++e)
    if (e != excluded && (best < 0 || l[e] > l[best]))
      best = e;
  const float m = l[best], threshold = 2.0f * eps;
  for (int32_t e = 0; e < E; ++e) {
    // 0 / 0 (a zero best and a zero logit) is NaN, which does not mask.
    bool far = e == excluded || (m - l[e]) / std::max(std::fabs(l[e]), m) > threshold;
    masked[e] = far ? -std::numeric_limits<float>::infinity() : l[e];
    p[e] = masked[e];
  }
  softmaxRow(p, E);
  return best;
}

/// The index of the largest of `values` (the lower index on ties).
inline int32_t argmax(const float *values, int64_t n) {
  int32_t best = 0;
  for (int32_t i = 1; i < n; ++i)
    if (values[i] > values[best])
      best = i;
  return best;
}

} // namespace moec::rt::cpu

#endif // MOEC_RUNTIME_CPU_SPARSEMIXER_H
