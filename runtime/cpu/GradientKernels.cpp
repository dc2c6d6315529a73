// GradientKernels.cpp - CPU kernels of the backward ops (MoEGradientOps.td).
#include "runtime/cpu/CpuKernels.h"
#include "runtime/cpu/ExpertBlocks.h"
#include "runtime/cpu/Ffn.h"
#include "runtime/cpu/Math.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

namespace moec::rt::cpu {

namespace {
void zero(const TensorRef &t) { std::memset(t.data, 0, t.bytes()); }

Status fill(const StepContext &s) {
  TensorRef &out = s.out(0);
  float value = static_cast<float>(s.f64("value"));
  if (out.dtype != DType::f32)
    return s.error("only f32 fills are implemented");
  std::fill(out.f32(), out.f32() + out.numel(), value);
  return Status::ok();
}

Status reduceRows(const StepContext &s) {
  const TensorRef &x = s.in(0);
  int64_t D = x.dim(-1), rows = x.numel() / D;
  zero(s.out(0));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < D; ++j)
      s.out(0).f32()[j] += x.f32()[r * D + j];
  return Status::ok();
}

Status embeddingGrad(const StepContext &s) {
  const TensorRef &dy = s.in(0), &tokens = s.in(1);
  TensorRef &dtable = s.out(0);
  int64_t d = dtable.dim(1);
  zero(dtable);
  for (int64_t t = 0; t < tokens.numel(); ++t) {
    const float *row = dy.f32() + t * d;
    float *dst = dtable.f32() + tokens.i32()[t] * d;
    for (int64_t j = 0; j < d; ++j)
      dst[j] += row[j];
  }
  return Status::ok();
}

Status rmsNormGrad(const StepContext &s) {
  const TensorRef &x = s.in(0), &w = s.in(1), &dy = s.in(2);
  int64_t D = x.dim(-1), rows = x.numel() / D;
  float eps = static_cast<float>(s.f64("eps", 1e-6));
  TensorRef &dx = s.out(0), &dw = s.out(1);
  zero(dw);
  for (int64_t r = 0; r < rows; ++r) {
    const float *in = x.f32() + r * D, *g = dy.f32() + r * D;
    float sum = 0;
    for (int64_t i = 0; i < D; ++i)
      sum += in[i] * in[i];
    float rs = 1.0f / std::sqrt(sum / D + eps);
    float dot = 0;
    for (int64_t i = 0; i < D; ++i) {
      dot += w.f32()[i] * g[i] * in[i];
      dw.f32()[i] += g[i] * in[i] * rs;
    }
    float coefficient = dot * rs * rs * rs / D;
    for (int64_t i = 0; i < D; ++i)
      dx.f32()[r * D + i] = rs * w.f32()[i] * g[i] - in[i] * coefficient;
  }
  return Status::ok();
}

Status linearGrad(const StepContext &s) {
  const TensorRef &x = s.in(0), &w = s.in(1), &dy = s.in(2);
  int64_t in = x.dim(-1), out = w.dim(0), M = x.numel() / in;
  gemm(false, false, M, in, out, 1.0f, dy.f32(), out, w.f32(), in, 0.0f,
       s.out(0).f32(), in);
  gemm(true, false, out, in, M, 1.0f, dy.f32(), out, x.f32(), in, 0.0f,
       s.out(1).f32(), in);
  return Status::ok();
}

Status ropeGrad(const StepContext &s) {
  const TensorRef &dy = s.in(0);
  int64_t B = dy.dim(0), S = dy.dim(1), H = dy.dim(2), D = dy.dim(3), half = D / 2;
  float theta = static_cast<float>(s.f64("theta", 10000.0));
  for (int64_t i = 0; i < half; ++i) {
    float invFreq = 1.0f / std::pow(theta, static_cast<float>(2 * i) / D);
    for (int64_t p = 0; p < S; ++p) {
      float angle = static_cast<float>(p) * invFreq, c = std::cos(angle), sn = std::sin(angle);
      for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < H; ++h) {
          int64_t base = ((b * S + p) * H + h) * D;
          float g1 = dy.f32()[base + i], g2 = dy.f32()[base + i + half];
          s.out(0).f32()[base + i] = g1 * c + g2 * sn;
          s.out(0).f32()[base + i + half] = -g1 * sn + g2 * c;
        }
    }
  }
  return Status::ok();
}

Status attentionGrad(const StepContext &s) {
  const TensorRef &q = s.in(0), &k = s.in(1), &v = s.in(2), &dout = s.in(3);
  int64_t B = q.dim(0), S = q.dim(1), Hq = q.dim(2), D = q.dim(3), Hkv = k.dim(2),
          group = Hq / Hkv;
  float scale = s.has("scale") ? static_cast<float>(s.f64("scale"))
                               : 1.0f / std::sqrt(static_cast<float>(D));
  bool causal = s.flag("causal");
  float *dq = s.out(0).f32(), *dk = s.out(1).f32(), *dv = s.out(2).f32();
  zero(s.out(1));
  zero(s.out(2));
  // One task per key/value head: its query heads all write its dK and dV.
  // Per-head GEMMs are small; threads over heads, single-threaded BLAS.
#pragma omp parallel
  {
    std::vector<float> P(S * S), dP(S * S);
#pragma omp for collapse(2)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t kvh = 0; kvh < Hkv; ++kvh)
        for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
          int64_t qOff = b * S * Hq * D + h * D, kOff = b * S * Hkv * D + kvh * D;
          const float *Q = q.f32() + qOff, *K = k.f32() + kOff, *V = v.f32() + kOff;
          const float *dO = dout.f32() + qOff;
          gemm(false, true, S, S, D, scale, Q, Hq * D, K, Hkv * D, 0.0f, P.data(), S);
          for (int64_t i = 0; i < S; ++i) {
            int64_t visible = causal ? i + 1 : S;
            softmaxRow(P.data() + i * S, visible);
            std::fill(P.data() + i * S + visible, P.data() + (i + 1) * S, 0.0f);
          }
          // dV += Pᵀ dO; dP = dO Vᵀ.
          gemm(true, false, S, D, S, 1.0f, P.data(), S, dO, Hq * D, 1.0f, dv + kOff, Hkv * D);
          gemm(false, true, S, S, D, 1.0f, dO, Hq * D, V, Hkv * D, 0.0f, dP.data(), S);
          // dS = P ⊙ (dP − rowsum(dP ⊙ P)), scaled.
          for (int64_t i = 0; i < S; ++i) {
            float dot = 0;
            for (int64_t j = 0; j < S; ++j)
              dot += dP[i * S + j] * P[i * S + j];
            for (int64_t j = 0; j < S; ++j)
              dP[i * S + j] = P[i * S + j] * (dP[i * S + j] - dot) * scale;
          }
          gemm(false, false, S, D, S, 1.0f, dP.data(), S, K, Hkv * D, 0.0f, dq + qOff, Hq * D);
          gemm(true, false, S, D, S, 1.0f, dP.data(), S, Q, Hq * D, 1.0f, dk + kOff, Hkv * D);
        }
  }
  return Status::ok();
}

Status ffnGrad(const StepContext &s) {
  const TensorRef &x = s.in(0), &w1 = s.in(1), &w2 = s.in(2);
  bool gated = s.numInputs() == 5;
  const TensorRef &dy = s.in(gated ? 4 : 3);
  int64_t d = x.dim(-1), F = w1.dim(0), rows = x.numel() / d;
  FfnWeights w{w1.f32(), w2.f32(), gated ? s.in(3).f32() : nullptr};
  static thread_local std::vector<float> scratch;
  ffnRowsBackward(x.f32(), dy.f32(), s.out(0).f32(), rows, d, F, w,
                  parseActivation(s.str("activation")), s.out(1).f32(),
                  s.out(2).f32(), gated ? s.out(3).f32() : nullptr, scratch);
  return Status::ok();
}

Status crossEntropyGrad(const StepContext &s) {
  const TensorRef &logits = s.in(0), &targets = s.in(1);
  int64_t V = logits.dim(-1), n = targets.numel();
  float scale = *s.in(2).f32() / n;
  for (int64_t t = 0; t < n; ++t) {
    float *row = s.out(0).f32() + t * V;
    std::memcpy(row, logits.f32() + t * V, V * sizeof(float));
    softmaxRow(row, V);
    row[targets.i32()[t]] -= 1.0f;
    for (int64_t j = 0; j < V; ++j)
      row[j] *= scale;
  }
  return Status::ok();
}

Status scoreGrad(const StepContext &s) {
  const TensorRef &scores = s.in(0), &ds = s.in(1);
  int64_t T = scores.dim(0), E = scores.dim(1);
  bool sigmoid = s.str("function") == "sigmoid";
  float invTemperature = static_cast<float>(1.0 / s.f64("temperature", 1.0));
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

Status selectionGrad(const StepContext &s) {
  const TensorRef &scores = s.in(0), &indices = s.in(1), &dw = s.in(2);
  int64_t T = scores.dim(0), E = scores.dim(1), K = indices.dim(1);
  bool normalize = s.flag("normalize");
  float normEps = static_cast<float>(s.f64("norm_eps")), scaling = static_cast<float>(s.f64("scaling", 1.0));
  zero(s.out(0));
  for (int64_t t = 0; t < T; ++t) {
    const int32_t *idx = indices.i32() + t * K;
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

Status sortByExpertGrad(const StepContext &s) {
  const TensorRef &indices = s.in(0), &dsorted = s.in(1);
  int64_t T = indices.dim(0), K = indices.dim(1), E = s.i64("num_experts");
  std::vector<int64_t> next(E, 0);
  for (int64_t i = 0; i < T * K; ++i)
    if (indices.i32()[i] >= 0 && indices.i32()[i] + 1 < E)
      ++next[indices.i32()[i] + 1];
  std::partial_sum(next.begin(), next.end(), next.begin());
  for (int64_t t = 0; t < T; ++t)
    for (int64_t k = 0; k < K; ++k) {
      int32_t e = indices.i32()[t * K + k];
      s.out(0).f32()[t * K + k] = e >= 0 ? dsorted.f32()[next[e]++] : 0.0f;
    }
  return Status::ok();
}

Status assignSlotsGrad(const StepContext &s) {
  const TensorRef &weights = s.in(0), &indices = s.in(1), &dslots = s.in(2);
  int64_t T = weights.dim(0), K = weights.dim(1), E = s.i64("num_experts"),
          C = s.i64("capacity");
  std::vector<int64_t> order(T * K);
  std::iota(order.begin(), order.end(), 0);
  auto weightOf = [&](int64_t a) { return weights.f32()[(a % T) * K + a / T]; };
  if (s.str("priority", "position") == "score")
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return weightOf(a) > weightOf(b); });
  std::vector<int64_t> filled(E, 0);
  zero(s.out(0));
  for (int64_t a : order) {
    int64_t t = a % T, k = a / T;
    int32_t e = indices.i32()[t * K + k];
    if (e < 0)
      continue;
    int64_t position = filled[e]++;
    if (position < C)
      s.out(0).f32()[t * K + k] = dslots.f32()[e * C + position];
  }
  return Status::ok();
}

Status combineGrad(const StepContext &s) {
  const TensorRef &outputs = s.in(0), &gates = s.in(1), &slots = s.in(2), &dy = s.in(3);
  int64_t n = slots.numel(), d = dy.dim(1);
  for (int64_t i = 0; i < n; ++i) {
    int32_t t = slots.i32()[i];
    float *dout = s.out(0).f32() + i * d;
    if (t < 0) {
      std::fill(dout, dout + d, 0.0f);
      s.out(1).f32()[i] = 0.0f;
      continue;
    }
    const float *g = dy.f32() + t * d, *o = outputs.f32() + i * d;
    float gate = gates.f32()[i], dot = 0;
    for (int64_t j = 0; j < d; ++j) {
      dout[j] = gate * g[j];
      dot += o[j] * g[j];
    }
    s.out(1).f32()[i] = dot;
  }
  return Status::ok();
}

Status groupedFfnGrad(const StepContext &s) {
  std::vector<int64_t> segments = s.ints("operandSegmentSizes");
  if (segments.size() != 6)
    return s.error("missing operand segment sizes");
  bool hasW3 = segments[3] == 1, hasSizes = segments[4] == 1;
  const TensorRef &x = s.in(0), &w1 = s.in(1), &w2 = s.in(2);
  const TensorRef *w3 = hasW3 ? &s.in(3) : nullptr;
  const TensorRef *sizes = hasSizes ? &s.in(3 + hasW3) : nullptr;
  const TensorRef &dy = s.in(3 + hasW3 + hasSizes);
  int64_t E = w1.dim(0), F = w1.dim(1), d = w1.dim(2), rows = x.numel() / d;
  auto blocks = expertBlocks(s, x, sizes, E);
  if (!blocks)
    return blocks.status();
  std::vector<int64_t> &first = blocks->first, &count = blocks->count;
  std::memset(s.out(0).f32() + blocks->used * d, 0, (rows - blocks->used) * d * sizeof(float));
  Act act = parseActivation(s.str("activation"));
  // Experts in sequence, each GEMM on every core (see ExpertKernels.cpp).
  static thread_local std::vector<float> scratch;
  for (int64_t e = 0; e < E; ++e) {
    FfnWeights w{w1.f32() + e * F * d, w2.f32() + e * d * F,
                 w3 ? w3->f32() + e * F * d : nullptr};
    ffnRowsBackward(x.f32() + first[e] * d, dy.f32() + first[e] * d,
                    s.out(0).f32() + first[e] * d, count[e], d, F, w, act,
                    s.out(1).f32() + e * F * d, s.out(2).f32() + e * d * F,
                    w3 ? s.out(3).f32() + e * F * d : nullptr, scratch);
  }
  return Status::ok();
}

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
        for (int64_t k = 0; k < K; ++k)
          if (int32_t e = indices.i32()[t * K + k]; e >= 0)
            count[e] += 1;
      for (int64_t t = b * S; t < (b + 1) * S; ++t)
        for (int64_t e = 0; e < E; ++e)
          out[t * E + e] = static_cast<float>(dloss * count[e] /
                                              (static_cast<double>(S) * K / E) / S / B);
    }
    return Status::ok();
  }
  std::vector<double> f(E, 0.0);
  double total = 0;
  for (int64_t i = 0; i < T * K; ++i)
    if (int32_t e = indices.i32()[i]; e >= 0) {
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

Status extractSlice(const StepContext &s) {
  std::vector<int64_t> offsets = s.ints("static_offsets");
  const TensorRef &src = s.in(0);
  TensorRef &out = s.out(0);
  for (size_t i = 1; i < offsets.size(); ++i)
    if (offsets[i] != 0 || out.dim(i) != src.dim(i))
      return s.error("only slices along dimension 0 are implemented");
  size_t rowBytes = out.bytes() / std::max<int64_t>(1, out.dim(0));
  std::memcpy(out.data, static_cast<char *>(src.data) + offsets[0] * rowBytes, out.bytes());
  return Status::ok();
}
Status layerNormGrad(const StepContext &s) {
  const TensorRef &x = s.in(0), &w = s.in(1), &dy = s.in(2);
  int64_t D = x.dim(-1), rows = x.numel() / D;
  float eps = static_cast<float>(s.f64("eps", 1e-5));
  zero(s.out(1));
  zero(s.out(2));
  for (int64_t r = 0; r < rows; ++r) {
    const float *in = x.f32() + r * D, *g = dy.f32() + r * D;
    float mean = 0, var = 0;
    for (int64_t i = 0; i < D; ++i)
      mean += in[i];
    mean /= D;
    for (int64_t i = 0; i < D; ++i)
      var += (in[i] - mean) * (in[i] - mean);
    float rs = 1.0f / std::sqrt(var / D + eps);
    float sumG = 0, sumGX = 0;
    for (int64_t i = 0; i < D; ++i) {
      float xhat = (in[i] - mean) * rs, gw = g[i] * w.f32()[i];
      sumG += gw;
      sumGX += gw * xhat;
      s.out(1).f32()[i] += g[i] * xhat;
      s.out(2).f32()[i] += g[i];
    }
    for (int64_t i = 0; i < D; ++i) {
      float xhat = (in[i] - mean) * rs;
      s.out(0).f32()[r * D + i] = rs * (g[i] * w.f32()[i] - sumG / D - xhat * sumGX / D);
    }
  }
  return Status::ok();
}

Status activationGrad(const StepContext &s) {
  Act act = parseActivation(s.str("kind"));
  const float *x = s.in(0).f32(), *g = s.in(1).f32();
  int64_t n = s.out(0).numel();
  for (int64_t i = 0; i < n; ++i)
    s.out(0).f32()[i] = g[i] * activateGrad(act, x[i]);
  return Status::ok();
}

Status routerInputTransformGrad(const StepContext &s) {
  const TensorRef &x = s.in(0), &dy = s.in(1);
  int64_t T = x.dim(0), d = x.dim(1);
  std::string kind = s.str("kind");
  float eps = static_cast<float>(s.f64("eps", 1e-6));
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

Status gumbelSoftmaxGrad(const StepContext &s) {
  const TensorRef &scores = s.in(0), &ds = s.in(2);
  float invTau = 1.0f / *s.in(1).f32();
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

Status expertChoiceGrad(const StepContext &s) {
  const TensorRef &slots = s.in(0), &dg = s.in(1);
  int64_t E = slots.dim(0), C = slots.dim(1);
  zero(s.out(0));
  for (int64_t e = 0; e < E; ++e)
    for (int64_t c = 0; c < C; ++c)
      if (int32_t t = slots.i32()[e * C + c]; t >= 0)
        s.out(0).f32()[t * E + e] += dg.f32()[e * C + c];
  return Status::ok();
}

Status entropyLossGrad(const StepContext &s) {
  const TensorRef &scores = s.in(0);
  float dloss = *s.in(1).f32();
  double q = s.f64("q", 1.0);
  int64_t T = scores.dim(0), E = scores.dim(1);
  for (int64_t i = 0; i < T * E; ++i) {
    double p = scores.f32()[i];
    double d = q == 1.0 ? (p > 0 ? -(std::log(p) + 1.0) : 0.0)
                        : -q * std::pow(p, q - 1.0) / (q - 1.0);
    s.out(0).f32()[i] = static_cast<float>(dloss * d / T);
  }
  return Status::ok();
}

Status sharedExpertsGrad(const StepContext &s) {
  std::vector<int64_t> segments = s.ints("operandSegmentSizes");
  if (segments.size() != 6)
    return s.error("missing operand segment sizes");
  bool hasW3 = segments[3] == 1, hasGate = segments[4] == 1;
  const TensorRef &x = s.in(0), &w1 = s.in(1), &w2 = s.in(2);
  const float *w3 = hasW3 ? s.in(3).f32() : nullptr;
  const float *gateW = hasGate ? s.in(3 + hasW3).f32() : nullptr;
  const TensorRef &dy = s.in(3 + hasW3 + hasGate);
  int64_t T = x.dim(0), d = x.dim(1), F = w1.dim(0);
  Act act = parseActivation(s.str("activation"));
  FfnWeights w{w1.f32(), w2.f32(), w3};
  std::vector<float> scratch, f, dyScaled(dy.f32(), dy.f32() + T * d), gates(T, 1.0f);
  float *dGate = hasGate ? s.out(3 + hasW3).f32() : nullptr;
  if (hasGate) {
    f.resize(T * d);
    ffnRows(x.f32(), f.data(), T, d, F, w, act, scratch);
    std::fill(dGate, dGate + d, 0.0f);
    for (int64_t t = 0; t < T; ++t) {
      float z = 0;
      for (int64_t i = 0; i < d; ++i)
        z += x.f32()[t * d + i] * gateW[i];
      gates[t] = 1.0f / (1.0f + std::exp(-z));
      for (int64_t i = 0; i < d; ++i)
        dyScaled[t * d + i] *= gates[t];
    }
  }
  ffnRowsBackward(x.f32(), dyScaled.data(), s.out(0).f32(), T, d, F, w, act,
                  s.out(1).f32(), s.out(2).f32(), hasW3 ? s.out(3).f32() : nullptr,
                  scratch);
  if (hasGate) {
    for (int64_t t = 0; t < T; ++t) {
      float dsig = 0;
      for (int64_t i = 0; i < d; ++i)
        dsig += dy.f32()[t * d + i] * f[t * d + i];
      float dz = dsig * gates[t] * (1.0f - gates[t]);
      for (int64_t i = 0; i < d; ++i) {
        s.out(0).f32()[t * d + i] += dz * gateW[i];
        dGate[i] += dz * x.f32()[t * d + i];
      }
    }
  }
  return Status::ok();
}

Status loraExpertsGrad(const StepContext &s) {
  std::vector<int64_t> segments = s.ints("operandSegmentSizes");
  if (segments.size() != 5)
    return s.error("missing operand segment sizes");
  int64_t numBase = segments[1], numAdapters = segments[2];
  bool hasSizes = segments[3] == 1;
  const TensorRef &x = s.in(0), &w1 = s.in(1);
  auto base = [&](int i) -> const TensorRef & { return s.in(1 + i); };
  auto adapter = [&](int i) -> const TensorRef & { return s.in(1 + numBase + i); };
  const TensorRef *sizes = hasSizes ? &s.in(1 + numBase + numAdapters) : nullptr;
  const TensorRef &dy = s.in(1 + numBase + numAdapters + hasSizes);
  int64_t F = w1.dim(0), d = w1.dim(1), E = adapter(0).dim(0), rank = adapter(0).dim(1),
          rows = x.numel() / d;
  float scale = static_cast<float>(s.f64("alpha") / rank);
  Act act = parseActivation(s.str("activation"));
  auto blocks = expertBlocks(s, x, sizes, E);
  if (!blocks)
    return blocks.status();
  std::vector<int64_t> &first = blocks->first, &count = blocks->count;
  std::memset(s.out(0).f32() + blocks->used * d, 0, (rows - blocks->used) * d * sizeof(float));
  // Projection p: in_p -> out_p; w1, w3: d -> F; w2: F -> d.
  auto inOf = [&](int p) { return p == 1 ? F : d; };
  auto outOf = [&](int p) { return p == 1 ? d : F; };
#pragma omp parallel
  {
    std::vector<float> scratch, effective[3], dEffective[3];
#pragma omp for schedule(dynamic)
    for (int64_t e = 0; e < E; ++e) {
      // W_eff = W + scale · B A, then dA = scale · Bᵀ dW_eff, dB = scale · dW_eff Aᵀ.
      for (int p = 0; p < numBase; ++p) {
        int64_t in = inOf(p), out = outOf(p);
        const float *A = adapter(2 * p).f32() + e * rank * in;
        const float *Bm = adapter(2 * p + 1).f32() + e * out * rank;
        effective[p].assign(base(p).f32(), base(p).f32() + out * in);
        gemm(false, false, out, in, rank, scale, Bm, rank, A, in, 1.0f,
             effective[p].data(), in);
        dEffective[p].assign(out * in, 0.0f);
      }
      FfnWeights w{effective[0].data(), effective[1].data(),
                   numBase == 3 ? effective[2].data() : nullptr};
      ffnRowsBackward(x.f32() + first[e] * d, dy.f32() + first[e] * d,
                      s.out(0).f32() + first[e] * d, count[e], d, F, w, act,
                      dEffective[0].data(), dEffective[1].data(),
                      numBase == 3 ? dEffective[2].data() : nullptr, scratch);
      for (int p = 0; p < numBase; ++p) {
        int64_t in = inOf(p), out = outOf(p);
        const float *A = adapter(2 * p).f32() + e * rank * in;
        const float *Bm = adapter(2 * p + 1).f32() + e * out * rank;
        float *dA = s.out(1 + 2 * p).f32() + e * rank * in;
        float *dB = s.out(2 + 2 * p).f32() + e * out * rank;
        gemm(true, false, rank, in, out, scale, Bm, rank, dEffective[p].data(), in, 0.0f, dA, in);
        gemm(false, true, out, rank, in, scale, dEffective[p].data(), in, A, in, 0.0f, dB, rank);
      }
    }
  }
  return Status::ok();
}
} // namespace

void registerGradientKernels(KernelRegistry &r) {
  r.add("moe.layer_norm_grad", layerNormGrad);
  r.add("moe.activation_grad", activationGrad);
  r.add("moe.router_input_transform_grad", routerInputTransformGrad);
  r.add("moe.gumbel_softmax_grad", gumbelSoftmaxGrad);
  r.add("moe.expert_choice_grad", expertChoiceGrad);
  r.add("moe.entropy_loss_grad", entropyLossGrad);
  r.add("moe.shared_experts_grad", sharedExpertsGrad);
  r.add("moe.lora_experts_grad", loraExpertsGrad);
  r.add("moe.fill", fill);
  r.add("moe.reduce_rows", reduceRows);
  r.add("moe.embedding_grad", embeddingGrad);
  r.add("moe.rms_norm_grad", rmsNormGrad);
  r.add("moe.linear_grad", linearGrad);
  r.add("moe.rope_grad", ropeGrad);
  r.add("moe.attention_grad", attentionGrad);
  r.add("moe.ffn_grad", ffnGrad);
  r.add("moe.cross_entropy_grad", crossEntropyGrad);
  r.add("moe.score_grad", scoreGrad);
  r.add("moe.selection_grad", selectionGrad);
  r.add("moe.sort_by_expert_grad", sortByExpertGrad);
  r.add("moe.assign_slots_grad", assignSlotsGrad);
  r.add("moe.combine_grad", combineGrad);
  r.add("moe.grouped_ffn_grad", groupedFfnGrad);
  r.add("moe.load_balancing_loss_grad", loadBalancingLossGrad);
  r.add("moe.z_loss_grad", zLossGrad);
  r.add("tensor.extract_slice", extractSlice);
}

} // namespace moec::rt::cpu
