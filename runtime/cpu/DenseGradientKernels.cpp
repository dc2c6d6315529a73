// DenseGradientKernels.cpp - CPU kernels of the backward ops of the dense transformer ops
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
Status fill(const StepContext &s) {
  TensorRef &out = s.out(0);
  float value = static_cast<float>(s.f64("value"));
  if (out.dtype != DType::f32)
    return s.error("only f32 fills are implemented");
  std::fill(out.f32(), out.f32() + out.numel(), value);
  return Status::ok();
}

/// Calls `body(begin, end)` on blocks of [0, D) columns across the threads:
/// each column's sum over rows then runs in row order on one thread, the
/// same bits as one thread summing row after row.
template <typename Body> void forColumnBlocks(int64_t D, Body body) {
  constexpr int64_t kBlock = 64;
#pragma omp parallel for schedule(static)
  for (int64_t begin = 0; begin < D; begin += kBlock)
    body(begin, std::min(D, begin + kBlock));
}

Status reduceRows(const StepContext &s) {
  const TensorRef &x = s.in(0);
  int64_t D = x.dim(-1), rows = x.numel() / D;
  const float *in = x.f32();
  float *sum = s.out(0).f32();
  forColumnBlocks(D, [&](int64_t begin, int64_t end) {
    std::fill(sum + begin, sum + end, 0.0f);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = begin; j < end; ++j)
        sum[j] += in[r * D + j];
  });
  return Status::ok();
}

Status embeddingGrad(const StepContext &s) {
  const TensorRef &dy = s.in(0), &tokens = s.in(1);
  TensorRef &dtable = s.out(0);
  int64_t d = dtable.dim(1);
  if (Status bad = checkVocabularyIds(s, tokens, dtable.dim(0), "token id"); !bad)
    return bad;
  zero(dtable);
  // Tokens in order, each thread adding its columns.
  forColumnBlocks(d, [&](int64_t begin, int64_t end) {
    for (int64_t t = 0; t < tokens.numel(); ++t) {
      const float *row = dy.f32() + t * d;
      float *dst = dtable.f32() + tokens.i32()[t] * d;
      for (int64_t j = begin; j < end; ++j)
        dst[j] += row[j];
    }
  });
  return Status::ok();
}

Status rmsNormGrad(const StepContext &s) {
  const TensorRef &x = s.in(0), &w = s.in(1), &dy = s.in(2);
  int64_t D = x.dim(-1), rows = x.numel() / D;
  float eps = static_cast<float>(s.f64("eps"));
  TensorRef &dx = s.out(0), &dw = s.out(1);
  // Rows in parallel; then dw, a sum over rows, by column blocks.
  std::vector<float> scales(rows);
#pragma omp parallel for
  for (int64_t r = 0; r < rows; ++r) {
    const float *in = x.f32() + r * D, *g = dy.f32() + r * D;
    float sum = 0;
    for (int64_t i = 0; i < D; ++i)
      sum += in[i] * in[i];
    float rs = 1.0f / std::sqrt(sum / D + eps);
    float dot = 0;
    for (int64_t i = 0; i < D; ++i)
      dot += w.f32()[i] * g[i] * in[i];
    float coefficient = dot * rs * rs * rs / D;
    for (int64_t i = 0; i < D; ++i)
      dx.f32()[r * D + i] = rs * w.f32()[i] * g[i] - in[i] * coefficient;
    scales[r] = rs;
  }
  forColumnBlocks(D, [&](int64_t begin, int64_t end) {
    float *sum = dw.f32();
    std::fill(sum + begin, sum + end, 0.0f);
    for (int64_t r = 0; r < rows; ++r) {
      const float *in = x.f32() + r * D, *g = dy.f32() + r * D;
      for (int64_t i = begin; i < end; ++i)
        sum[i] += g[i] * in[i] * scales[r];
    }
  });
  return Status::ok();
}

Status layerNormGrad(const StepContext &s) {
  const TensorRef &x = s.in(0), &w = s.in(1), &dy = s.in(2);
  int64_t D = x.dim(-1), rows = x.numel() / D;
  float eps = static_cast<float>(s.f64("eps"));
  // Rows in parallel; then the weight and bias gradients, sums over rows,
  // by column blocks.
  std::vector<float> means(rows), scales(rows);
#pragma omp parallel for
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
    }
    for (int64_t i = 0; i < D; ++i) {
      float xhat = (in[i] - mean) * rs;
      s.out(0).f32()[r * D + i] = rs * (g[i] * w.f32()[i] - sumG / D - xhat * sumGX / D);
    }
    means[r] = mean;
    scales[r] = rs;
  }
  forColumnBlocks(D, [&](int64_t begin, int64_t end) {
    float *dw = s.out(1).f32(), *db = s.out(2).f32();
    std::fill(dw + begin, dw + end, 0.0f);
    std::fill(db + begin, db + end, 0.0f);
    for (int64_t r = 0; r < rows; ++r) {
      const float *in = x.f32() + r * D, *g = dy.f32() + r * D;
      for (int64_t i = begin; i < end; ++i) {
        dw[i] += g[i] * ((in[i] - means[r]) * scales[r]);
        db[i] += g[i];
      }
    }
  });
  return Status::ok();
}

Status linearGrad(const StepContext &s) {
  auto precision = precisionOf(s);
  if (!precision)
    return precision.status();
  const TensorRef &x = s.in(0), &w = s.in(1), &dy = s.in(2);
  int64_t in = x.dim(-1), out = w.dim(0), M = x.numel() / in;
  gemm(false, false, M, in, out, 1.0f, dy.f32(), out, w.f32(), in, 0.0f, s.out(0).f32(), in,
       *precision);
  gemm(true, false, out, in, M, 1.0f, dy.f32(), out, x.f32(), in, 0.0f, s.out(1).f32(), in,
       *precision);
  return Status::ok();
}

Status ropeGrad(const StepContext &s) {
  const TensorRef &dy = s.in(0);
  int64_t B = dy.dim(0), S = dy.dim(1), H = dy.dim(2), D = dy.dim(3), half = D / 2;
  auto inverse = ropeInverseFrequencies(s, D);
  if (!inverse)
    return inverse.status();
  float factor = static_cast<float>(s.f64("attention_factor"));
  bool interleaved = s.flag("interleaved");
  const std::vector<float> &frequencies = *inverse;
  // Positions in parallel: each writes its own elements.
#pragma omp parallel for
  for (int64_t p = 0; p < S; ++p)
    for (int64_t i = 0; i < half; ++i) {
      int64_t first = interleaved ? 2 * i : i, second = interleaved ? 2 * i + 1 : i + half;
      float angle = static_cast<float>(p) * frequencies[i], c = std::cos(angle) * factor,
            sn = std::sin(angle) * factor;
      for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < H; ++h) {
          int64_t base = ((b * S + p) * H + h) * D;
          float g1 = dy.f32()[base + first], g2 = dy.f32()[base + second];
          s.out(0).f32()[base + first] = g1 * c + g2 * sn;
          s.out(0).f32()[base + second] = -g1 * sn + g2 * c;
        }
    }
  return Status::ok();
}

Status attentionGrad(const StepContext &s) {
  auto precision = precisionOf(s);
  if (!precision)
    return precision.status();
  const TensorRef &q = s.in(0), &k = s.in(1), &v = s.in(2), &dout = s.in(3);
  int64_t B = q.dim(0), S = q.dim(1), Hq = q.dim(2), D = q.dim(3), Dv = v.dim(3), Hkv = k.dim(2),
          group = Hq / Hkv;
  float scale = s.has("scale") ? static_cast<float>(s.f64("scale"))
                               : 1.0f / std::sqrt(static_cast<float>(D));
  AttentionMask mask = attentionMask(s);
  const float *sinks = s.numInputs() > 4 ? s.in(4).f32() : nullptr;
  float *dq = s.out(0).f32(), *dk = s.out(1).f32(), *dv = s.out(2).f32();
  zero(s.out(1));
  zero(s.out(2));
  // dsinks[h] = −Σ_{b,i} p_sink · rowsum(dP ⊙ P): per (batch, head) here,
  // summed over the batch in order afterwards (deterministic).
  std::vector<double> sinkPartial(sinks ? B * Hq : 0, 0.0);
  std::vector<uint16_t> q16, k16, v16, dout16;
  AttentionOperand Q(q, *precision, q16), K(k, *precision, k16), V(v, *precision, v16),
      dO(dout, *precision, dout16);
  // One task per key/value head: its query heads all write its dK and dV.
  // Per-head GEMMs are small; threads over heads, single-threaded BLAS.
#pragma omp parallel
  {
    std::vector<float> P(S * S), dP(S * S), sinkProbability(S);
#pragma omp for collapse(2)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t kvh = 0; kvh < Hkv; ++kvh)
        for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
          int64_t qOff = b * S * Hq * D + h * D, kOff = b * S * Hkv * D + kvh * D;
          int64_t vOff = b * S * Hkv * Dv + kvh * Dv;
          gemm(false, true, S, S, D, scale, Q.headOf(b, h), K.headOf(b, kvh), 0.0f,
               MatrixOut(P.data(), S), *precision);
          for (int64_t i = 0; i < S; ++i)
            sinkProbability[i] =
                visibleSoftmax(P.data() + i * S, S, i, mask, sinks ? sinks + h : nullptr);
          // dV += Pᵀ dO; dP = dO Vᵀ.
          gemm(true, false, S, Dv, S, 1.0f, MatrixIn(P.data(), S), dO.headOf(b, h), 1.0f,
               MatrixOut(dv + vOff, Hkv * Dv), *precision);
          gemm(false, true, S, S, Dv, 1.0f, dO.headOf(b, h), V.headOf(b, kvh), 0.0f,
               MatrixOut(dP.data(), S), *precision);
          // dS = P ⊙ (dP − rowsum(dP ⊙ P)), scaled.
          for (int64_t i = 0; i < S; ++i) {
            float dot = 0;
            for (int64_t j = 0; j < S; ++j)
              dot += dP[i * S + j] * P[i * S + j];
            if (sinks)
              sinkPartial[b * Hq + h] -= double(sinkProbability[i] * dot);
            // The query's temperature multiplies its scores.
            float rowScale = mask.temperatureFloor > 0 ? scale * mask.temperature(i) : scale;
            for (int64_t j = 0; j < S; ++j)
              dP[i * S + j] = P[i * S + j] * (dP[i * S + j] - dot) * rowScale;
          }
          gemm(false, false, S, D, S, 1.0f, MatrixIn(dP.data(), S), K.headOf(b, kvh), 0.0f,
               MatrixOut(dq + qOff, Hq * D), *precision);
          gemm(true, false, S, D, S, 1.0f, MatrixIn(dP.data(), S), Q.headOf(b, h), 1.0f,
               MatrixOut(dk + kOff, Hkv * D), *precision);
        }
  }
  if (sinks)
    for (int64_t h = 0; h < Hq; ++h) {
      double sum = 0;
      for (int64_t b = 0; b < B; ++b)
        sum += sinkPartial[b * Hq + h];
      s.out(3).f32()[h] = static_cast<float>(sum);
    }
  return Status::ok();
}

Status activationGrad(const StepContext &s) {
  Act act = parseActivation(s.str("kind"));
  const float *x = s.in(0).f32(), *g = s.in(1).f32();
  int64_t n = s.out(0).numel();
  float *dx = s.out(0).f32();
  withActivation(act, [&](auto kind) {
#pragma omp parallel for
    for (int64_t i = 0; i < n; ++i)
      dx[i] = g[i] * activateGrad(kind, x[i]);
  });
  return Status::ok();
}

Status clampedSwigluGradKernel(const StepContext &s) {
  const float *x = s.in(0).f32(), *dy = s.in(1).f32();
  float *dx = s.out(0).f32();
  float alpha = static_cast<float>(s.f64("alpha")), limit = static_cast<float>(s.f64("limit"));
  int64_t n = s.in(1).numel();
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i)
    clampedSwigluGrad(x[2 * i], x[2 * i + 1], dy[i], alpha, limit, dx[2 * i], dx[2 * i + 1]);
  return Status::ok();
}

Status ffnGrad(const StepContext &s) {
  auto precision = precisionOf(s);
  if (!precision)
    return precision.status();
  const TensorRef &x = s.in(0), &w1 = s.in(1), &w2 = s.in(2);
  bool gated = s.numInputs() == 5;
  const TensorRef &dy = s.in(gated ? 4 : 3);
  int64_t d = x.dim(-1), F = w1.dim(0), rows = x.numel() / d;
  FfnWeights w{w1.f32(), w2.f32(), gated ? s.in(3).f32() : nullptr};
  static thread_local std::vector<float> scratch;
  ffnRowsBackward(x.f32(), dy.f32(), s.out(0).f32(), rows, d, F, w,
                  parseActivation(s.str("activation")), s.out(1).f32(), s.out(2).f32(),
                  gated ? s.out(3).f32() : nullptr, *precision, scratch);
  return Status::ok();
}

Status crossEntropyGrad(const StepContext &s) {
  const TensorRef &logits = s.in(0), &targets = s.in(1);
  int64_t V = logits.dim(-1), n = targets.numel();
  if (Status bad = checkVocabularyIds(s, targets, V, "target"); !bad)
    return bad;
  float scale = *s.in(2).f32() / n;
#pragma omp parallel for
  for (int64_t t = 0; t < n; ++t) {
    float *row = s.out(0).f32() + t * V;
    if (const float *source = logits.f32() + t * V; source != row) // else in place
      std::memcpy(row, source, V * sizeof(float));
    softmaxRow(row, V);
    row[targets.i32()[t]] -= 1.0f;
    for (int64_t j = 0; j < V; ++j)
      row[j] *= scale;
  }
  return Status::ok();
}
} // namespace

void registerDenseGradientKernels(KernelTable &r) {
  r.add("moe.fill", fill);
  r.add("moe.reduce_rows", reduceRows);
  r.add("moe.embedding_grad", embeddingGrad);
  r.add("moe.rms_norm_grad", rmsNormGrad);
  r.add("moe.layer_norm_grad", layerNormGrad);
  r.add("moe.linear_grad", linearGrad);
  r.add("moe.rope_grad", ropeGrad);
  r.add("moe.attention_grad", attentionGrad);
  r.add("moe.activation_grad", activationGrad);
  r.add("moe.clamped_swiglu_grad", clampedSwigluGradKernel);
  r.add("moe.ffn_grad", ffnGrad);
  r.add("moe.cross_entropy_grad", crossEntropyGrad);
}

} // namespace moec::rt::cpu
