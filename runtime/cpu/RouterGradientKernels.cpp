// RouterGradientKernels.cpp - CPU kernels of the backward ops of scores and selections
// (MoEGradientOps.td).
#include "runtime/cpu/CpuKernels.h"
#include "runtime/cpu/ExpertBlocks.h"
#include "runtime/cpu/Ffn.h"
#include "runtime/cpu/Math.h"
#include "runtime/cpu/OperandChecks.h"
#include "runtime/cpu/SparseMixer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

namespace moec::rt::cpu {

namespace {
Status scoreGrad(const StepContext &s) {
  const TensorRef &scores = s.in(0), &ds = s.in(1);
  int64_t T = scores.dim(0), E = scores.dim(1);
  bool sigmoid = s.str("function") == "sigmoid";
  float invTemperature = static_cast<float>(1.0 / s.f64("temperature"));
  for (int64_t t = 0; t < T; ++t) {
    const float *sr = scores.f32() + t * E, *g = ds.f32() + t * E;
    float *out = s.out(0).f32() + t * E;
    float dot = 0;
    for (int64_t e = 0; e < E; ++e)
      dot += g[e] * sr[e];
    for (int64_t e = 0; e < E; ++e)
      out[e] = sigmoid ? g[e] * sr[e] * (1.0f - sr[e])
                       : sr[e] * (g[e] - dot) * invTemperature;
  }
  return Status::ok();
}

Status gumbelSoftmaxGrad(const StepContext &s) {
  const TensorRef &scores = s.in(0), &ds = s.in(2);
  float tau = *s.in(1).f32();
  if (Status bad = checkGumbelTemperature(s, tau); !bad)
    return bad;
  float invTau = 1.0f / tau;
  int64_t T = scores.dim(0), E = scores.dim(1);
  for (int64_t t = 0; t < T; ++t) {
    const float *sr = scores.f32() + t * E, *g = ds.f32() + t * E;
    float dot = 0;
    for (int64_t e = 0; e < E; ++e)
      dot += g[e] * sr[e];
    for (int64_t e = 0; e < E; ++e)
      s.out(0).f32()[t * E + e] = sr[e] * (g[e] - dot) * invTau;
  }
  return Status::ok();
}

Status routerInputTransformGrad(const StepContext &s) {
  const TensorRef &x = s.in(0), &dy = s.in(1);
  int64_t T = x.dim(0), d = x.dim(1);
  std::string kind = s.str("kind");
  float eps = static_cast<float>(s.f64("eps"));
  for (int64_t t = 0; t < T; ++t) {
    const float *in = x.f32() + t * d, *g = dy.f32() + t * d;
    float *out = s.out(0).f32() + t * d;
    if (kind == "l2norm") {
      float norm = 0;
      for (int64_t i = 0; i < d; ++i)
        norm += in[i] * in[i];
      norm = std::sqrt(norm);
      if (norm <= eps) {
        for (int64_t i = 0; i < d; ++i)
          out[i] = g[i] / eps;
        continue;
      }
      float dot = 0;
      for (int64_t i = 0; i < d; ++i)
        dot += g[i] * in[i];
      for (int64_t i = 0; i < d; ++i)
        out[i] = g[i] / norm - in[i] * dot / (norm * norm * norm);
    } else if (kind == "layernorm") {
      float mean = 0, var = 0;
      for (int64_t i = 0; i < d; ++i)
        mean += in[i];
      mean /= d;
      for (int64_t i = 0; i < d; ++i)
        var += (in[i] - mean) * (in[i] - mean);
      float rs = 1.0f / std::sqrt(var / d + eps), sumG = 0, sumGX = 0;
      for (int64_t i = 0; i < d; ++i) {
        sumG += g[i];
        sumGX += g[i] * (in[i] - mean) * rs;
      }
      for (int64_t i = 0; i < d; ++i)
        out[i] = rs * (g[i] - sumG / d - (in[i] - mean) * rs * sumGX / d);
    } else if (kind == "tanh") {
      for (int64_t i = 0; i < d; ++i) {
        float th = std::tanh(in[i]);
        out[i] = g[i] * (1.0f - th * th);
      }
    } else {
      std::copy(g, g + d, out);
    }
  }
  return Status::ok();
}

Status selectionGrad(const StepContext &s) {
  const TensorRef &scores = s.in(0), &indices = s.in(1), &dw = s.in(2);
  int64_t T = scores.dim(0), E = scores.dim(1), K = indices.dim(1);
  bool normalize = s.flag("normalize");
  float normEps = static_cast<float>(s.f64("norm_eps")), scaling = static_cast<float>(s.f64("scaling"));
  zero(s.out(0));
  for (int64_t t = 0; t < T; ++t) {
    const int32_t *idx = indices.i32() + t * K;
    for (int64_t j = 0; j < K; ++j) // -1: no expert
      if (Status bad = checkIndex(s, idx[j], E); !bad)
        return bad;
    const float *g = dw.f32() + t * K, *sr = scores.f32() + t * E;
    float *out = s.out(0).f32() + t * E;
    if (!normalize) {
      for (int64_t j = 0; j < K; ++j)
        if (idx[j] >= 0)
          out[idx[j]] += scaling * g[j];
      continue;
    }
    float sum = 0, dot = 0;
    for (int64_t j = 0; j < K; ++j)
      if (idx[j] >= 0) {
        sum += sr[idx[j]];
        dot += g[j] * sr[idx[j]];
      }
    float denominator = sum + normEps;
    for (int64_t j = 0; j < K; ++j)
      if (idx[j] >= 0)
        out[idx[j]] += scaling * (g[j] / denominator - dot / (denominator * denominator));
  }
  return Status::ok();
}

/// Per pick, the softmax gradient of its gate (PhimoeMultiplier's
/// backward): dl += dw · p[pick] · (onehot(pick) − p).
Status sparseMixerGrad(const StepContext &s) {
  const TensorRef &logits = s.in(0), &indices = s.in(1), &dw = s.in(2);
  int64_t T = logits.dim(0), E = logits.dim(1);
  float eps = static_cast<float>(s.f64("epsilon"));
  for (int64_t t = 0; t < T; ++t) {
    const int32_t *idx = indices.i32() + t * 2;
    if (idx[0] < 0 || idx[0] >= E || idx[1] < 0 || idx[1] >= E || idx[0] == idx[1])
      return s.error("token " + std::to_string(t) + " has picks " + std::to_string(idx[0]) +
                     " and " + std::to_string(idx[1]) + ", not two experts of " +
                     std::to_string(E));
  }
  std::vector<float> p(E), masked(E); // one token's gates at a time
  for (int64_t t = 0; t < T; ++t) {
    const float *l = logits.f32() + t * E;
    const int32_t *idx = indices.i32() + t * 2;
    float *out = s.out(0).f32() + t * E;
    std::fill(out, out + E, 0.0f);
    int32_t excluded = -1;
    for (int j = 0; j < 2; ++j) {
      sparseMixerGates(l, E, excluded, eps, masked.data(), p.data());
      int32_t pick = idx[j];
      float scaled = dw.f32()[t * 2 + j] * p[pick];
      for (int64_t e = 0; e < E; ++e)
        out[e] -= scaled * p[e];
      out[pick] += scaled;
      excluded = pick;
    }
  }
  return Status::ok();
}

Status expertChoiceGrad(const StepContext &s) {
  const TensorRef &slots = s.in(0), &dg = s.in(1);
  int64_t E = slots.dim(0), C = slots.dim(1), T = s.out(0).dim(0);
  zero(s.out(0));
  for (int64_t e = 0; e < E; ++e)
    for (int64_t c = 0; c < C; ++c) {
      int32_t t = slots.i32()[e * C + c];
      if (Status bad = checkSlotToken(s, t, T); !bad)
        return bad;
      if (t >= 0)
        s.out(0).f32()[t * E + e] += dg.f32()[e * C + c];
    }
  return Status::ok();
}
} // namespace

void registerRouterGradientKernels(KernelTable &r) {
  r.add("moe.score_grad", scoreGrad);
  r.add("moe.gumbel_softmax_grad", gumbelSoftmaxGrad);
  r.add("moe.router_input_transform_grad", routerInputTransformGrad);
  r.add("moe.selection_grad", selectionGrad);
  r.add("moe.sparsemixer_grad", sparseMixerGrad);
  r.add("moe.expert_choice_grad", expertChoiceGrad);
}

} // namespace moec::rt::cpu
