//===- LinearAttentionKernels.cpp - gated DeltaNet on the CPU -------------===//
//
// moe.causal_conv1d, moe.delta_decay and moe.gated_delta_rule with their
// gradients (dialects/moe/IR/MoELinearAttentionOps.td has the math). The
// delta rule runs the recurrence position by position per sequence and value
// head, its state a [Dk, Dv] matrix; its gradient recomputes the states from
// checkpoints every kChunk positions, one chunk at a time, last chunk first.
//
//===----------------------------------------------------------------------===//
#include "runtime/cpu/CpuKernels.h"
#include "runtime/cpu/Math.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace moec::rt::cpu {
namespace {

Status causalConv1D(const StepContext &s) {
  const TensorRef &x = s.in(0), &w = s.in(1);
  int64_t B = x.dim(0), S = x.dim(1), C = x.dim(2), K = w.dim(1);
  const float *X = x.f32(), *W = w.f32();
  float *Y = s.out(0).f32();
#pragma omp parallel for collapse(2)
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < S; ++t)
      for (int64_t c = 0; c < C; ++c) {
        float sum = 0.0f;
        for (int64_t j = std::max<int64_t>(0, K - 1 - t); j < K; ++j)
          sum += W[c * K + j] * X[(b * S + t - (K - 1) + j) * C + c];
        Y[(b * S + t) * C + c] = sum;
      }
  return Status::ok();
}

Status causalConv1DGrad(const StepContext &s) {
  const TensorRef &x = s.in(0), &w = s.in(1), &dy = s.in(2);
  int64_t B = x.dim(0), S = x.dim(1), C = x.dim(2), K = w.dim(1);
  const float *X = x.f32(), *W = w.f32(), *DY = dy.f32();
  float *DX = s.out(0).f32(), *DW = s.out(1).f32();
#pragma omp parallel for collapse(2)
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < S; ++t)
      for (int64_t c = 0; c < C; ++c) {
        // Output position t + (K - 1) - j read input position t through tap j.
        float sum = 0.0f;
        for (int64_t j = std::max<int64_t>(0, t + K - S); j < K; ++j)
          sum += W[c * K + j] * DY[(b * S + t + (K - 1) - j) * C + c];
        DX[(b * S + t) * C + c] = sum;
      }
#pragma omp parallel for
  for (int64_t c = 0; c < C; ++c)
    for (int64_t j = 0; j < K; ++j) {
      double sum = 0.0;
      for (int64_t b = 0; b < B; ++b)
        for (int64_t t = std::max<int64_t>(0, K - 1 - j); t < S; ++t)
          sum += double(DY[(b * S + t) * C + c]) * X[(b * S + t - (K - 1) + j) * C + c];
      DW[c * K + j] = float(sum);
    }
  return Status::ok();
}

/// PyTorch's softplus (beta 1, threshold 20) and its derivative.
float softplus(float x) { return x > 20.0f ? x : std::log1p(std::exp(x)); }
float softplusGrad(float x) { return x > 20.0f ? 1.0f : activate(Act::sigmoid, x); }

Status deltaDecay(const StepContext &s) {
  const TensorRef &a = s.in(0);
  const float *A = a.f32(), *alog = s.in(1).f32(), *bias = s.in(2).f32();
  int64_t H = a.dim(-1), n = a.numel();
  float *G = s.out(0).f32();
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i)
    G[i] = -std::exp(alog[i % H]) * softplus(A[i] + bias[i % H]);
  return Status::ok();
}

Status deltaDecayGrad(const StepContext &s) {
  const TensorRef &a = s.in(0);
  const float *A = a.f32(), *alog = s.in(1).f32(), *bias = s.in(2).f32(), *DG = s.in(3).f32();
  int64_t H = a.dim(-1), rows = a.numel() / H;
  float *DA = s.out(0).f32(), *DALOG = s.out(1).f32(), *DBIAS = s.out(2).f32();
#pragma omp parallel for
  for (int64_t h = 0; h < H; ++h) {
    float rate = std::exp(alog[h]);
    double dlog = 0.0, dbias = 0.0;
    for (int64_t r = 0; r < rows; ++r) {
      int64_t i = r * H + h;
      float u = A[i] + bias[h];
      float da = -DG[i] * rate * softplusGrad(u);
      DA[i] = da;
      dbias += da;
      dlog += double(DG[i]) * (-rate * softplus(u));
    }
    DALOG[h] = float(dlog);
    DBIAS[h] = float(dbias);
  }
  return Status::ok();
}

/// The shapes and attributes of a moe.gated_delta_rule(_grad) step.
struct DeltaRule {
  int64_t B, S, Hk, Dk, Hv, Dv;
  float scale;
  bool l2norm;
  float eps;

  explicit DeltaRule(const StepContext &s) {
    const TensorRef &q = s.in(0), &v = s.in(2);
    B = q.dim(0), S = q.dim(1), Hk = q.dim(2), Dk = q.dim(3), Hv = v.dim(2), Dv = v.dim(3);
    scale = s.has("scale") ? float(s.f64("scale")) : 1.0f / std::sqrt(float(Dk));
    l2norm = s.has("qk_l2norm_eps");
    eps = l2norm ? float(s.f64("qk_l2norm_eps")) : 0.0f;
  }
  int64_t group() const { return Hv / Hk; }
  int64_t qk(int64_t b, int64_t t, int64_t kh) const { return ((b * S + t) * Hk + kh) * Dk; }
  int64_t v(int64_t b, int64_t t, int64_t h) const { return ((b * S + t) * Hv + h) * Dv; }
  int64_t gate(int64_t b, int64_t t, int64_t h) const { return (b * S + t) * Hv + h; }

  /// Sequence b's queries (times the scale) and keys of key head kh, L2
  /// normalised when asked; their norms in qNorm, kNorm (1 without).
  void normalized(const float *q, const float *k, int64_t b, int64_t kh, std::vector<float> &qHat,
                  std::vector<float> &kHat, std::vector<float> &qNorm,
                  std::vector<float> &kNorm) const {
    qHat.resize(S * Dk), kHat.resize(S * Dk), qNorm.assign(S, 1.0f), kNorm.assign(S, 1.0f);
    for (int64_t t = 0; t < S; ++t) {
      const float *Q = q + qk(b, t, kh), *K = k + qk(b, t, kh);
      if (l2norm) {
        float qq = 0.0f, kk = 0.0f;
        for (int64_t i = 0; i < Dk; ++i)
          qq += Q[i] * Q[i], kk += K[i] * K[i];
        qNorm[t] = std::sqrt(qq + eps), kNorm[t] = std::sqrt(kk + eps);
      }
      for (int64_t i = 0; i < Dk; ++i) {
        qHat[t * Dk + i] = Q[i] / qNorm[t] * scale;
        kHat[t * Dk + i] = K[i] / kNorm[t];
      }
    }
  }

  /// One position: M ← exp(g)·M + k δᵀ with δ = β(v − exp(g)·Mᵀk); δ and
  /// m = exp(g)·Mᵀk returned in delta, m (Dv each).
  void step(float *M, const float *k, const float *v, float g, float beta, float *delta,
            float *m) const {
    float decay = std::exp(g);
    for (int64_t i = 0; i < Dk * Dv; ++i)
      M[i] *= decay;
    std::fill(m, m + Dv, 0.0f);
    for (int64_t i = 0; i < Dk; ++i)
      for (int64_t j = 0; j < Dv; ++j)
        m[j] += M[i * Dv + j] * k[i];
    for (int64_t j = 0; j < Dv; ++j)
      delta[j] = beta * (v[j] - m[j]);
    for (int64_t i = 0; i < Dk; ++i)
      for (int64_t j = 0; j < Dv; ++j)
        M[i * Dv + j] += k[i] * delta[j];
  }
};

Status gatedDeltaRule(const StepContext &s) {
  DeltaRule r(s);
  const float *q = s.in(0).f32(), *k = s.in(1).f32(), *v = s.in(2).f32(), *g = s.in(3).f32(),
              *beta = s.in(4).f32();
  float *o = s.out(0).f32();
#pragma omp parallel for collapse(2)
  for (int64_t b = 0; b < r.B; ++b)
    for (int64_t h = 0; h < r.Hv; ++h) {
      int64_t kh = h / r.group();
      std::vector<float> qHat, kHat, qNorm, kNorm, M(r.Dk * r.Dv, 0.0f), delta(r.Dv), m(r.Dv);
      r.normalized(q, k, b, kh, qHat, kHat, qNorm, kNorm);
      for (int64_t t = 0; t < r.S; ++t) {
        r.step(M.data(), &kHat[t * r.Dk], v + r.v(b, t, h), g[r.gate(b, t, h)],
               beta[r.gate(b, t, h)], delta.data(), m.data());
        float *out = o + r.v(b, t, h);
        std::fill(out, out + r.Dv, 0.0f);
        for (int64_t i = 0; i < r.Dk; ++i)
          for (int64_t j = 0; j < r.Dv; ++j)
            out[j] += M[i * r.Dv + j] * qHat[t * r.Dk + i];
      }
    }
  return Status::ok();
}

/// dx of y = x / sqrt(Σx² + eps) (times `scale`) from dy, in place: dy
/// becomes (scale·dy − ŷ (scale·dy · ŷ)) / n with ŷ = x / n.
void normalizeBackward(float *dy, const float *x, float n, float scale, int64_t D) {
  float dot = 0.0f;
  for (int64_t i = 0; i < D; ++i)
    dot += scale * dy[i] * x[i] / n;
  for (int64_t i = 0; i < D; ++i)
    dy[i] = (scale * dy[i] - x[i] / n * dot) / n;
}

Status gatedDeltaRuleGrad(const StepContext &s) {
  DeltaRule r(s);
  const float *q = s.in(0).f32(), *k = s.in(1).f32(), *v = s.in(2).f32(), *g = s.in(3).f32(),
              *beta = s.in(4).f32(), *dout = s.in(5).f32();
  float *dq = s.out(0).f32(), *dk = s.out(1).f32(), *dv = s.out(2).f32(), *dg = s.out(3).f32(),
        *dbeta = s.out(4).f32();
  // Checkpoints every ⌈√S⌉ positions: the fewest states kept (S/C + C), as
  // the generated kernel keeps them.
  const int64_t kChunk = std::max<int64_t>(1, int64_t(std::ceil(std::sqrt(double(r.S)))));
  int64_t Dk = r.Dk, Dv = r.Dv, S = r.S, chunks = (S + kChunk - 1) / kChunk;
#pragma omp parallel for collapse(2)
  for (int64_t b = 0; b < r.B; ++b)
    for (int64_t kh = 0; kh < r.Hk; ++kh) {
      std::vector<float> qHat, kHat, qNorm, kNorm;
      r.normalized(q, k, b, kh, qHat, kHat, qNorm, kNorm);
      // Gradients with respect to q̂ and k̂, summed over the value heads.
      std::vector<float> dqHat(S * Dk, 0.0f), dkHat(S * Dk, 0.0f);
      // A chunk's states after each position, and each position's δ and m.
      std::vector<float> checkpoints(chunks * Dk * Dv), states(kChunk * Dk * Dv);
      std::vector<float> deltas(kChunk * Dv), ms(kChunk * Dv);
      std::vector<float> M(Dk * Dv), dM(Dk * Dv), ddelta(Dv), dm(Dv);
      for (int64_t h = kh * r.group(); h < (kh + 1) * r.group(); ++h) {
        std::fill(M.begin(), M.end(), 0.0f);
        for (int64_t t = 0; t < S; ++t) {
          if (t % kChunk == 0)
            std::copy(M.begin(), M.end(), &checkpoints[t / kChunk * Dk * Dv]);
          r.step(M.data(), &kHat[t * Dk], v + r.v(b, t, h), g[r.gate(b, t, h)],
                 beta[r.gate(b, t, h)], ddelta.data(), dm.data());
        }
        std::fill(dM.begin(), dM.end(), 0.0f);
        for (int64_t c = chunks - 1; c >= 0; --c) {
          int64_t begin = c * kChunk, end = std::min(S, begin + kChunk);
          const float *checkpoint = &checkpoints[c * Dk * Dv];
          std::copy(checkpoint, checkpoint + Dk * Dv, M.begin());
          for (int64_t t = begin; t < end; ++t) {
            r.step(M.data(), &kHat[t * Dk], v + r.v(b, t, h), g[r.gate(b, t, h)],
                   beta[r.gate(b, t, h)], &deltas[(t - begin) * Dv], &ms[(t - begin) * Dv]);
            std::copy(M.begin(), M.end(), &states[(t - begin) * Dk * Dv]);
          }
          for (int64_t t = end - 1; t >= begin; --t) {
            const float *kt = &kHat[t * Dk], *qt = &qHat[t * Dk], *vt = v + r.v(b, t, h),
                        *dot = dout + r.v(b, t, h);
            const float *after = &states[(t - begin) * Dk * Dv],
                        *before = t == begin ? checkpoint : after - Dk * Dv;
            const float *delta = &deltas[(t - begin) * Dv], *m = &ms[(t - begin) * Dv];
            float bt = beta[r.gate(b, t, h)], decay = std::exp(g[r.gate(b, t, h)]);
            for (int64_t i = 0; i < Dk; ++i) {
              float dqi = 0.0f;
              for (int64_t j = 0; j < Dv; ++j) {
                dM[i * Dv + j] += qt[i] * dot[j];
                dqi += after[i * Dv + j] * dot[j];
              }
              dqHat[t * Dk + i] += dqi;
            }
            std::fill(ddelta.begin(), ddelta.end(), 0.0f);
            for (int64_t i = 0; i < Dk; ++i) {
              float dki = 0.0f;
              for (int64_t j = 0; j < Dv; ++j) {
                ddelta[j] += dM[i * Dv + j] * kt[i];
                dki += dM[i * Dv + j] * delta[j];
              }
              dkHat[t * Dk + i] += dki;
            }
            float dbt = 0.0f;
            for (int64_t j = 0; j < Dv; ++j) {
              dv[r.v(b, t, h) + j] = bt * ddelta[j];
              dbt += ddelta[j] * (vt[j] - m[j]);
              dm[j] = -bt * ddelta[j];
            }
            dbeta[r.gate(b, t, h)] = dbt;
            // dA = dM + k dmᵀ; dk += A dm; dg = Σ dA ⊙ A; the earlier dM = decay · dA.
            double dgt = 0.0;
            for (int64_t i = 0; i < Dk; ++i) {
              float dki = 0.0f;
              for (int64_t j = 0; j < Dv; ++j) {
                float A = decay * before[i * Dv + j];
                float dA = dM[i * Dv + j] + kt[i] * dm[j];
                dki += A * dm[j];
                dgt += double(dA) * A;
                dM[i * Dv + j] = decay * dA;
              }
              dkHat[t * Dk + i] += dki;
            }
            dg[r.gate(b, t, h)] = float(dgt);
          }
        }
      }
      for (int64_t t = 0; t < S; ++t) {
        float *dQ = dq + r.qk(b, t, kh), *dK = dk + r.qk(b, t, kh);
        std::copy(&dqHat[t * Dk], &dqHat[(t + 1) * Dk], dQ);
        std::copy(&dkHat[t * Dk], &dkHat[(t + 1) * Dk], dK);
        const float *Q = q + r.qk(b, t, kh), *K = k + r.qk(b, t, kh);
        if (r.l2norm) {
          normalizeBackward(dQ, Q, qNorm[t], r.scale, Dk);
          normalizeBackward(dK, K, kNorm[t], 1.0f, Dk);
        } else {
          for (int64_t i = 0; i < Dk; ++i)
            dQ[i] *= r.scale;
        }
      }
    }
  return Status::ok();
}
/// The shapes and per-head decays of a moe.lightning_attention(_grad) step.
struct Lightning {
  int64_t B, S, H, D;
  std::vector<double> rates;
  explicit Lightning(const StepContext &s) {
    const TensorRef &q = s.in(0);
    B = q.dim(0), S = q.dim(1), H = q.dim(2), D = q.dim(3);
    rates = s.floats("decay");
  }
  int64_t row(int64_t b, int64_t t, int64_t h) const { return ((b * S + t) * H + h) * D; }
  /// A plan whose `decay` does not give one rate per head is an error.
  Status check(const StepContext &s) const {
    if (int64_t(rates.size()) == H)
      return Status::ok();
    return s.error("'decay' has " + std::to_string(rates.size()) + " rates for " +
                   std::to_string(H) + " heads");
  }
};

/// out_t = Mᵀ x_t over t in order (or, `reverse`, from the last), where
/// M ← e^{−s} M + a_t b_tᵀ first: the state of a lightning attention
/// (a = k, b = v, x = q) or of its backward pass. `transpose` reads out
/// M x_t instead.
void decayedScan(const float *a, const float *bv, const float *x, float *out, const Lightning &l,
                 int64_t b, int64_t h, bool reverse, bool transpose) {
  int64_t D = l.D;
  float decay = std::exp(-float(l.rates[h]));
  std::vector<float> M(D * D, 0.0f);
  for (int64_t step = 0; step < l.S; ++step) {
    int64_t t = reverse ? l.S - 1 - step : step, at = l.row(b, t, h);
    for (int64_t i = 0; i < D; ++i)
      for (int64_t j = 0; j < D; ++j)
        M[i * D + j] = decay * M[i * D + j] + a[at + i] * bv[at + j];
    for (int64_t k = 0; k < D; ++k) {
      float sum = 0.0f;
      for (int64_t m = 0; m < D; ++m)
        sum += (transpose ? M[k * D + m] : M[m * D + k]) * x[at + m];
      out[at + k] = sum;
    }
  }
}

Status lightningAttention(const StepContext &s) {
  Lightning l(s);
  if (Status status = l.check(s); !status)
    return status;
  const float *q = s.in(0).f32(), *k = s.in(1).f32(), *v = s.in(2).f32();
  float *o = s.out(0).f32();
#pragma omp parallel for collapse(2)
  for (int64_t b = 0; b < l.B; ++b)
    for (int64_t h = 0; h < l.H; ++h)
      decayedScan(k, v, q, o, l, b, h, /*reverse=*/false, /*transpose=*/false);
  return Status::ok();
}

Status lightningAttentionGrad(const StepContext &s) {
  Lightning l(s);
  if (Status status = l.check(s); !status)
    return status;
  const float *q = s.in(0).f32(), *k = s.in(1).f32(), *v = s.in(2).f32(), *dout = s.in(3).f32();
  float *dq = s.out(0).f32(), *dk = s.out(1).f32(), *dv = s.out(2).f32();
#pragma omp parallel for collapse(2)
  for (int64_t b = 0; b < l.B; ++b)
    for (int64_t h = 0; h < l.H; ++h) {
      // dq_t = M_t do_t; with G_t = e^{−s} G_{t+1} + q_t do_tᵀ, dk_t = G_t v_t
      // and dv_t = G_tᵀ k_t.
      decayedScan(k, v, dout, dq, l, b, h, /*reverse=*/false, /*transpose=*/true);
      decayedScan(q, dout, v, dk, l, b, h, /*reverse=*/true, /*transpose=*/true);
      decayedScan(q, dout, k, dv, l, b, h, /*reverse=*/true, /*transpose=*/false);
    }
  return Status::ok();
}
} // namespace

void registerLinearAttentionKernels(KernelTable &r) {
  r.add("moe.lightning_attention", lightningAttention);
  r.add("moe.lightning_attention_grad", lightningAttentionGrad);
  r.add("moe.causal_conv1d", causalConv1D);
  r.add("moe.causal_conv1d_grad", causalConv1DGrad);
  r.add("moe.delta_decay", deltaDecay);
  r.add("moe.delta_decay_grad", deltaDecayGrad);
  r.add("moe.gated_delta_rule", gatedDeltaRule);
  r.add("moe.gated_delta_rule_grad", gatedDeltaRuleGrad);
}

} // namespace moec::rt::cpu
