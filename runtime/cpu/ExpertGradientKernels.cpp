// ExpertGradientKernels.cpp - CPU kernels of the backward ops of dispatch, combine and the experts
// (MoEGradientOps.td).
#include "runtime/cpu/Bf16Storage.h"
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
Status sortByExpertGrad(const StepContext &s) {
  const TensorRef &indices = s.in(0), &dsorted = s.in(1);
  int64_t T = indices.dim(0), K = indices.dim(1), E = s.i64("num_experts");
  std::vector<int64_t> next(E, 0);
  for (int64_t i = 0; i < T * K; ++i) {
    int32_t e = indices.i32()[i];
    if (Status bad = checkIndex(s, e, E); !bad)
      return bad;
    if (e >= 0 && e + 1 < E)
      ++next[e + 1];
  }
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
  if (s.str("priority") == "score")
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return weightOf(a) > weightOf(b); });
  std::vector<int64_t> filled(E, 0);
  zero(s.out(0));
  for (int64_t a : order) {
    int64_t t = a % T, k = a / T;
    int32_t e = indices.i32()[t * K + k];
    if (Status bad = checkIndex(s, e, E); !bad)
      return bad;
    if (e < 0)
      continue;
    int64_t position = filled[e]++;
    if (position < C)
      s.out(0).f32()[t * K + k] = dslots.f32()[e * C + position];
  }
  return Status::ok();
}

/// dinput = gates · dresult per row; dgates = input · dresult per row
/// (summed in double, in order).
Status scaleRowsGrad(const StepContext &s) {
  const TensorRef &x = s.in(0), &gates = s.in(1), &dy = s.in(2);
  int64_t n = gates.numel(), d = n ? x.numel() / n : 0;
  const float *in = x.f32(), *g = gates.f32(), *dr = dy.f32();
  float *dx = s.out(0).f32(), *dg = s.out(1).f32();
#pragma omp parallel for
  for (int64_t r = 0; r < n; ++r) {
    double dot = 0;
    for (int64_t j = 0; j < d; ++j) {
      dx[r * d + j] = g[r] * dr[r * d + j];
      dot += double(in[r * d + j]) * dr[r * d + j];
    }
    dg[r] = static_cast<float>(dot);
  }
  return Status::ok();
}

Status combineGrad(const StepContext &s) {
  const TensorRef &outputs = s.in(0), &gates = s.in(1), &slots = s.in(2), &dy = s.in(3);
  int64_t n = slots.numel(), T = dy.dim(0), d = dy.dim(1);
  if (Status bad = checkSlotTokens(s, slots, T); !bad)
    return bad;
  static thread_local std::vector<float> wide;
  const float *rows = floatsOf(outputs, wide); // the experts' outputs may be bf16
  // Each slot's row and gate on their own.
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i) {
    int32_t t = slots.i32()[i];
    float *dout = s.out(0).f32() + i * d;
    if (t < 0) {
      std::fill(dout, dout + d, 0.0f);
      s.out(1).f32()[i] = 0.0f;
      continue;
    }
    const float *g = dy.f32() + t * d, *o = rows + i * d;
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
  auto precision = precisionOf(s);
  if (!precision)
    return precision.status();
  std::vector<int64_t> segments = s.ints("operandSegmentSizes");
  if (segments.size() != 6)
    return s.error("missing operand segment sizes");
  bool hasW3 = segments[3] == 1, hasSizes = segments[4] == 1;
  const TensorRef &x = s.in(0), &w1 = s.in(1), &w2 = s.in(2);
  const TensorRef *w3 = hasW3 ? &s.in(3) : nullptr;
  const TensorRef *sizes = hasSizes ? &s.in(3 + hasW3) : nullptr;
  const TensorRef &dy = s.in(3 + hasW3 + hasSizes);
  int64_t E = w1.dim(0), F = w1.dim(1), d = w1.dim(2);
  auto blocks = expertBlocks(s, x, sizes, E);
  if (!blocks)
    return blocks.status();
  std::vector<int64_t> &first = blocks->first, &count = blocks->count;
  zeroRowsFrom(s.out(0), blocks->used);
  Act act = parseActivation(s.str("activation"));
  forEachExpert(*blocks, [&](int64_t e) {
    static thread_local std::vector<float> scratch; // this thread's
    FfnWeights w{w1.f32() + e * F * d, w2.f32() + e * d * F,
                 w3 ? w3->f32() + e * F * d : nullptr};
    ffnRowsBackward(x.f32() + first[e] * d, dy.f32() + first[e] * d, s.out(0).f32() + first[e] * d,
                    count[e], d, F, w, act, s.out(1).f32() + e * F * d, s.out(2).f32() + e * d * F,
                    w3 ? s.out(3).f32() + e * F * d : nullptr, *precision, scratch);
  });
  return Status::ok();
}

Status sharedExpertsGrad(const StepContext &s) {
  auto precision = precisionOf(s);
  if (!precision)
    return precision.status();
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
    ffnRows(x.f32(), f.data(), T, d, F, w, act, *precision, scratch);
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
  ffnRowsBackward(x.f32(), dyScaled.data(), s.out(0).f32(), T, d, F, w, act, s.out(1).f32(),
                  s.out(2).f32(), hasW3 ? s.out(3).f32() : nullptr, *precision, scratch);
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
  auto precision = precisionOf(s);
  if (!precision)
    return precision.status();
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
  int64_t F = w1.dim(0), d = w1.dim(1), E = adapter(0).dim(0), rank = adapter(0).dim(1);
  float scale = static_cast<float>(s.f64("alpha") / rank);
  Act act = parseActivation(s.str("activation"));
  auto blocks = expertBlocks(s, x, sizes, E);
  if (!blocks)
    return blocks.status();
  std::vector<int64_t> &first = blocks->first, &count = blocks->count;
  zeroRowsFrom(s.out(0), blocks->used);
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
        gemm(false, false, out, in, rank, scale, Bm, rank, A, in, 1.0f, effective[p].data(), in,
             *precision);
        dEffective[p].assign(out * in, 0.0f);
      }
      FfnWeights w{effective[0].data(), effective[1].data(),
                   numBase == 3 ? effective[2].data() : nullptr};
      ffnRowsBackward(x.f32() + first[e] * d, dy.f32() + first[e] * d,
                      s.out(0).f32() + first[e] * d, count[e], d, F, w, act, dEffective[0].data(),
                      dEffective[1].data(), numBase == 3 ? dEffective[2].data() : nullptr,
                      *precision, scratch);
      for (int p = 0; p < numBase; ++p) {
        int64_t in = inOf(p), out = outOf(p);
        const float *A = adapter(2 * p).f32() + e * rank * in;
        const float *Bm = adapter(2 * p + 1).f32() + e * out * rank;
        float *dA = s.out(1 + 2 * p).f32() + e * rank * in;
        float *dB = s.out(2 + 2 * p).f32() + e * out * rank;
        gemm(true, false, rank, in, out, scale, Bm, rank, dEffective[p].data(), in, 0.0f, dA, in,
             *precision);
        gemm(false, true, out, rank, in, scale, dEffective[p].data(), in, A, in, 0.0f, dB, rank,
             *precision);
      }
    }
  }
  return Status::ok();
}
} // namespace

void registerExpertGradientKernels(KernelTable &r) {
  r.add("moe.sort_by_expert_grad", sortByExpertGrad);
  r.add("moe.assign_slots_grad", assignSlotsGrad);
  r.add("moe.combine_grad", combineGrad);
  r.add("moe.scale_rows_grad", scaleRowsGrad);
  r.add("moe.grouped_ffn_grad", groupedFfnGrad);
  r.add("moe.shared_experts_grad", sharedExpertsGrad);
  r.add("moe.lora_experts_grad", loraExpertsGrad);
}

} // namespace moec::rt::cpu
