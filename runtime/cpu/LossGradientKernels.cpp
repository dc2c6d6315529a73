// LossGradientKernels.cpp - CPU kernels of the backward ops of the auxiliary losses
// (MoEGradientOps.td).
#include "runtime/cpu/CpuKernels.h"
#include "runtime/cpu/ExpertBlocks.h"
#include "runtime/cpu/Ffn.h"
#include "runtime/cpu/Math.h"
#include "runtime/cpu/OperandChecks.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

namespace moec::rt::cpu {

namespace {
Status loadBalancingLossGrad(const StepContext &s) {
  const TensorRef &scores = s.in(0), &indices = s.in(1);
  float dloss = *s.in(2).f32();
  int64_t T = scores.dim(0), E = scores.dim(1), K = indices.dim(1);
  std::string kind = s.str("kind");
  float *out = s.out(0).f32();
  if (kind == "sequence") {
    int64_t S = s.i64("seq_len"), B = T / S;
    for (int64_t b = 0; b < B; ++b) {
      std::vector<double> count(E, 0.0);
      for (int64_t t = b * S; t < (b + 1) * S; ++t)
        for (int64_t k = 0; k < K; ++k) {
          int32_t e = indices.i32()[t * K + k];
          if (e < 0) // no expert, ignored as the forward pass ignores it
            continue;
          if (Status bad = checkIndex(s, e, E); !bad)
            return bad;
          count[e] += 1;
        }
      for (int64_t t = b * S; t < (b + 1) * S; ++t)
        for (int64_t e = 0; e < E; ++e)
          out[t * E + e] = static_cast<float>(dloss * count[e] /
                                              (static_cast<double>(S) * K / E) / S / B);
    }
    return Status::ok();
  }
  std::vector<double> f(E, 0.0);
  double total = 0;
  for (int64_t i = 0; i < T * K; ++i) {
    int32_t e = indices.i32()[i];
    if (e < 0) // no expert, ignored as the forward pass ignores it
      continue;
    if (Status bad = checkIndex(s, e, E); !bad)
      return bad;
    f[e] += 1;
    total += 1;
  }
  for (int64_t e = 0; e < E; ++e)
    f[e] = kind == "per_slot" ? f[e] / T : (total > 0 ? f[e] / total : 0.0);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t e = 0; e < E; ++e)
      out[t * E + e] = static_cast<float>(dloss * E * f[e] / T);
  return Status::ok();
}

Status zLossGrad(const StepContext &s) {
  const TensorRef &logits = s.in(0);
  float dloss = *s.in(1).f32();
  int64_t T = logits.dim(0), E = logits.dim(1);
#pragma omp parallel for
  for (int64_t t = 0; t < T; ++t) {
    const float *l = logits.f32() + t * E;
    float *out = s.out(0).f32() + t * E;
    float lse = logSumExp(l, E);
    for (int64_t e = 0; e < E; ++e)
      out[e] = dloss * 2.0f * lse * std::exp(l[e] - lse) / T;
  }
  return Status::ok();
}

Status entropyLossGrad(const StepContext &s) {
  const TensorRef &scores = s.in(0);
  float dloss = *s.in(1).f32();
  double q = s.f64("q");
  int64_t T = scores.dim(0), E = scores.dim(1);
  for (int64_t i = 0; i < T * E; ++i) {
    double p = scores.f32()[i];
    double d = q == 1.0 ? (p > 0 ? -(std::log(p) + 1.0) : 0.0)
                        : -q * std::pow(p, q - 1.0) / (q - 1.0);
    s.out(0).f32()[i] = static_cast<float>(dloss * d / T);
  }
  return Status::ok();
}
} // namespace

void registerLossGradientKernels(KernelTable &r) {
  r.add("moe.load_balancing_loss_grad", loadBalancingLossGrad);
  r.add("moe.z_loss_grad", zLossGrad);
  r.add("moe.entropy_loss_grad", entropyLossGrad);
}

} // namespace moec::rt::cpu
