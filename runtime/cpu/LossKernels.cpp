// LossKernels.cpp - CPU kernels of the auxiliary losses and the objective.
#include "runtime/cpu/CpuKernels.h"
#include "runtime/cpu/Math.h"
#include "runtime/cpu/OperandChecks.h"

#include <cmath>
#include <vector>

namespace moec::rt::cpu {

namespace {
Status loadBalancingLoss(const StepContext &s) {
  const TensorRef &scores = s.in(0), &indices = s.in(1);
  int64_t T = scores.dim(0), E = scores.dim(1), K = indices.dim(1);
  std::string kind = s.str("kind");
  // An index past the experts (a forged plan) is refused, as the backward
  // pass refuses it; negative ones are dropped tokens.
  for (int64_t i = 0; i < T * K; ++i)
    if (int32_t e = indices.i32()[i]; e >= 0)
      if (Status bad = checkIndex(s, e, E); !bad)
        return bad;
  auto meanScores = [&](int64_t from, int64_t to) {
    std::vector<double> P(E, 0.0);
    for (int64_t t = from; t < to; ++t)
      for (int64_t e = 0; e < E; ++e)
        P[e] += scores.f32()[t * E + e];
    for (double &p : P)
      p /= (to - from);
    return P;
  };
  double loss = 0;
  if (kind == "sequence") {
    int64_t S = s.i64("seq_len"), B = T / S;
    for (int64_t b = 0; b < B; ++b) {
      std::vector<double> P = meanScores(b * S, (b + 1) * S), count(E, 0.0);
      for (int64_t t = b * S; t < (b + 1) * S; ++t)
        for (int64_t k = 0; k < K; ++k)
          if (int32_t e = indices.i32()[t * K + k]; e >= 0 && e < E)
            count[e] += 1;
      double term = 0;
      for (int64_t e = 0; e < E; ++e)
        term += count[e] / (static_cast<double>(S) * K / E) * P[e];
      loss += term / B;
    }
  } else {
    std::vector<double> P = meanScores(0, T);
    if (kind == "per_slot") {
      for (int64_t k = 0; k < K; ++k) {
        std::vector<double> f(E, 0.0);
        for (int64_t t = 0; t < T; ++t)
          if (int32_t e = indices.i32()[t * K + k]; e >= 0 && e < E)
            f[e] += 1.0 / T;
        for (int64_t e = 0; e < E; ++e)
          loss += f[e] * P[e];
      }
    } else {
      std::vector<double> f(E, 0.0);
      double total = 0;
      for (int64_t i = 0; i < T * K; ++i)
        if (int32_t e = indices.i32()[i]; e >= 0 && e < E) {
          f[e] += 1;
          total += 1;
        }
      for (int64_t e = 0; e < E; ++e)
        loss += (total > 0 ? f[e] / total : 0.0) * P[e];
    }
    loss *= E;
  }
  *s.out(0).f32() = static_cast<float>(loss);
  return Status::ok();
}

Status zLoss(const StepContext &s) {
  const TensorRef &logits = s.in(0);
  int64_t T = logits.dim(0), E = logits.dim(1);
  const float *rows = logits.f32();
  double sum = deterministicSum(T, 64, [rows, E](int64_t t) {
    double lse = logSumExp(rows + t * E, E);
    return lse * lse;
  });
  *s.out(0).f32() = static_cast<float>(sum / T);
  return Status::ok();
}

Status entropyLoss(const StepContext &s) {
  const TensorRef &scores = s.in(0);
  int64_t T = scores.dim(0), E = scores.dim(1);
  double q = s.f64("q"), sum = 0;
  for (int64_t t = 0; t < T; ++t) {
    const float *row = scores.f32() + t * E;
    double h = 0;
    if (q == 1.0) {
      for (int64_t e = 0; e < E; ++e)
        if (row[e] > 0)
          h -= row[e] * std::log(static_cast<double>(row[e]));
    } else {
      double power = 0;
      for (int64_t e = 0; e < E; ++e)
        power += std::pow(static_cast<double>(row[e]), q);
      h = (1.0 - power) / (q - 1.0);
    }
    sum += h;
  }
  *s.out(0).f32() = static_cast<float>(sum / T);
  return Status::ok();
}

Status weightedSum(const StepContext &s) {
  std::vector<double> coefficients = s.floats("coefficients");
  if (coefficients.size() != s.numInputs())
    return s.error("coefficient count does not match the terms");
  double sum = 0;
  for (size_t i = 0; i < s.numInputs(); ++i)
    sum += coefficients[i] * static_cast<double>(*s.in(i).f32());
  *s.out(0).f32() = static_cast<float>(sum);
  return Status::ok();
}
} // namespace

void registerLossKernels(KernelTable &r) {
  r.add("moe.load_balancing_loss", loadBalancingLoss);
  r.add("moe.z_loss", zLoss);
  r.add("moe.entropy_loss", entropyLoss);
  r.add("moe.weighted_sum", weightedSum);
}

} // namespace moec::rt::cpu
