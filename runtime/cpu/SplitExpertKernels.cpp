// SplitExpertKernels.cpp - the up and down halves of the routed experts and
// their gradients (training graphs, --moe-split-expert-ffn).
#include "runtime/cpu/Bf16Storage.h"
#include "runtime/cpu/CpuKernels.h"
#include "runtime/cpu/ExpertBlocks.h"
#include "runtime/cpu/Math.h"

#include <cstring>
#include <vector>

namespace moec::rt::cpu {

namespace {
/// Optional operands of the up ops: (input, w1, [w3], [group_sizes], ...).
struct UpOperands {
  const TensorRef *w3 = nullptr, *sizes = nullptr;
  size_t next = 2;
};
UpOperands upOperands(const StepContext &s) {
  std::vector<int64_t> segments = s.ints("operandSegmentSizes");
  UpOperands o;
  if (segments.size() >= 4) {
    if (segments[2] == 1)
      o.w3 = &s.in(o.next++);
    if (segments[3] == 1)
      o.sizes = &s.in(o.next++);
  }
  return o;
}

Status groupedFfnUp(const StepContext &s) {
  auto precision = precisionOf(s);
  if (!precision)
    return precision.status();
  const TensorRef &x = s.in(0), &w1 = s.in(1);
  UpOperands o = upOperands(s);
  int64_t E = w1.dim(0), F = w1.dim(1), d = w1.dim(2), H = s.out(0).dim(-1);
  auto blocks = expertBlocks(s, x, o.sizes, E);
  if (!blocks)
    return blocks.status();
  zeroRowsFrom(s.out(0), blocks->used);
  forEachExpert(*blocks, [&](int64_t e) {
    // Either side may be stored in bf16: widened and rounded per expert.
    static thread_local std::vector<float> wideX, wideOut; // this thread's
    int64_t first = blocks->first[e], M = blocks->count[e];
    const float *X = rowsOf(x, first, M, wideX);
    float *out = rowsOutput(s.out(0), first, M, wideOut);
    gemm(false, true, M, F, d, 1.0f, X, d, w1.f32() + e * F * d, d, 0.0f, out, H, *precision);
    if (o.w3)
      gemm(false, true, M, F, d, 1.0f, X, d, o.w3->f32() + e * F * d, d, 0.0f, out + F, H,
           *precision);
    storeRows(s.out(0), first, M, out);
  });
  return Status::ok();
}

/// g = act(h1) [⊙ h3] for M rows of `hidden` (row stride H) into `g` (M × F).
void gatedActivation(const float *hidden, int64_t M, int64_t F, int64_t H, bool gated,
                     Act act, float *g) {
#pragma omp parallel for
  for (int64_t r = 0; r < M; ++r)
    for (int64_t j = 0; j < F; ++j) {
      float h1 = hidden[r * H + j];
      g[r * F + j] = activate(act, h1) * (gated ? hidden[r * H + F + j] : 1.0f);
    }
}

/// What the down ops and their gradient share: (hidden, w2, [group_sizes])
/// with their sizes, the activation, and which rows belong to which expert.
struct DownProblem {
  const TensorRef *hidden, *w2;
  int64_t E, d, F, H, rows;
  bool gated;
  Act act;
  ExpertBlocks blocks;
};
StatusOr<DownProblem> downProblem(const StepContext &s, bool hasSizes) {
  DownProblem p;
  p.hidden = &s.in(0);
  p.w2 = &s.in(1);
  p.E = p.w2->dim(0);
  p.d = p.w2->dim(1);
  p.F = p.w2->dim(2);
  p.H = p.hidden->dim(-1);
  p.rows = p.hidden->numel() / p.H;
  p.gated = s.flag("gated");
  p.act = parseActivation(s.str("activation"));
  auto blocks = expertBlocks(s, *p.hidden, hasSizes ? &s.in(2) : nullptr, p.E);
  if (!blocks)
    return blocks.status();
  p.blocks = std::move(*blocks);
  return p;
}

Status groupedFfnDown(const StepContext &s) {
  auto precision = precisionOf(s);
  if (!precision)
    return precision.status();
  auto problem = downProblem(s, /*hasSizes=*/s.numInputs() > 2);
  if (!problem)
    return problem.status();
  const DownProblem &p = *problem;
  const TensorRef &hidden = *p.hidden, &w2 = *p.w2;
  const ExpertBlocks &blocks = p.blocks;
  int64_t d = p.d, F = p.F, H = p.H;
  zeroRowsFrom(s.out(0), blocks.used);
  forEachExpert(blocks, [&](int64_t e) {
    static thread_local std::vector<float> wideH, g, wideY; // this thread's
    int64_t first = blocks.first[e], M = blocks.count[e];
    const float *h = rowsOf(hidden, first, M, wideH);
    g.resize(M * F);
    gatedActivation(h, M, F, H, p.gated, p.act, g.data());
    float *y = rowsOutput(s.out(0), first, M, wideY);
    gemm(false, true, M, d, F, 1.0f, g.data(), F, w2.f32() + e * d * F, F, 0.0f, y, d, *precision);
    storeRows(s.out(0), first, M, y);
  });
  return Status::ok();
}

Status groupedFfnDownGrad(const StepContext &s) {
  auto precision = precisionOf(s);
  if (!precision)
    return precision.status();
  bool hasSizes = s.numInputs() == 4;
  auto problem = downProblem(s, hasSizes);
  if (!problem)
    return problem.status();
  const DownProblem &p = *problem;
  const TensorRef &hidden = *p.hidden, &w2 = *p.w2, &dy = s.in(hasSizes ? 3 : 2);
  const ExpertBlocks &blocks = p.blocks;
  int64_t d = p.d, F = p.F, H = p.H;
  zeroRowsFrom(s.out(0), blocks.used);
  forEachExpert(blocks, [&](int64_t e) {
    static thread_local std::vector<float> wideH, wideGrad, a, da, g, dg; // this thread's
    int64_t first = blocks.first[e], M = blocks.count[e];
    const float *h = rowsOf(hidden, first, M, wideH);
    const float *dY = dy.f32() + first * d;
    for (auto *buffer : {&a, &da, &g, &dg})
      buffer->resize(M * F);
    // Plain pointers: the scratch vectors are this thread's.
    float *ap = a.data(), *dap = da.data(), *gp = g.data(), *dgp = dg.data();
    // act(h1) and act'(h1) in one pass; g = act(h1) [⊙ h3].
#pragma omp parallel for
    for (int64_t r = 0; r < M; ++r)
      for (int64_t j = 0; j < F; ++j) {
        int64_t k = r * F + j;
        activateWithGrad(p.act, h[r * H + j], ap[k], dap[k]);
        gp[k] = p.gated ? ap[k] * h[r * H + F + j] : ap[k];
      }
    // dW2 = dYᵀ g; dg = dY W2.
    gemm(true, false, d, F, M, 1.0f, dY, d, gp, F, 0.0f, s.out(1).f32() + e * d * F, F, *precision);
    gemm(false, false, M, F, d, 1.0f, dY, d, w2.f32() + e * d * F, F, 0.0f, dgp, F, *precision);
    float *dh = rowsOutput(s.out(0), first, M, wideGrad);
#pragma omp parallel for
    for (int64_t r = 0; r < M; ++r)
      for (int64_t j = 0; j < F; ++j) {
        int64_t k = r * F + j;
        if (p.gated) {
          dh[r * H + j] = dgp[k] * h[r * H + F + j] * dap[k];
          dh[r * H + F + j] = dgp[k] * ap[k];
        } else {
          dh[r * H + j] = dgp[k] * dap[k];
        }
      }
    storeRows(s.out(0), first, M, dh);
  });
  return Status::ok();
}

Status groupedFfnUpGrad(const StepContext &s) {
  auto precision = precisionOf(s);
  if (!precision)
    return precision.status();
  const TensorRef &x = s.in(0), &w1 = s.in(1);
  UpOperands o = upOperands(s);
  const TensorRef &dhidden = s.in(o.next);
  int64_t E = w1.dim(0), F = w1.dim(1), d = w1.dim(2), H = dhidden.dim(-1);
  auto blocks = expertBlocks(s, x, o.sizes, E);
  if (!blocks)
    return blocks.status();
  zeroRowsFrom(s.out(0), blocks->used);
  forEachExpert(*blocks, [&](int64_t e) {
    // Either operand may be stored in bf16.
    static thread_local std::vector<float> wideX, wideGrad; // this thread's
    int64_t first = blocks->first[e], M = blocks->count[e];
    const float *X = rowsOf(x, first, M, wideX);
    const float *dH = rowsOf(dhidden, first, M, wideGrad);
    float *dX = s.out(0).f32() + first * d;
    // dW1 = dH1ᵀ X, dX = dH1 W1 (+ the same for the gated half).
    gemm(true, false, F, d, M, 1.0f, dH, H, X, d, 0.0f, s.out(1).f32() + e * F * d, d, *precision);
    gemm(false, false, M, d, F, 1.0f, dH, H, w1.f32() + e * F * d, d, 0.0f, dX, d, *precision);
    if (o.w3) {
      gemm(true, false, F, d, M, 1.0f, dH + F, H, X, d, 0.0f, s.out(2).f32() + e * F * d, d,
           *precision);
      gemm(false, false, M, d, F, 1.0f, dH + F, H, o.w3->f32() + e * F * d, d, 1.0f, dX, d,
           *precision);
    }
  });
  return Status::ok();
}
} // namespace

void registerSplitExpertKernels(KernelTable &r) {
  r.add("moe.grouped_ffn_up", groupedFfnUp);
  r.add("moe.grouped_ffn_down", groupedFfnDown);
  r.add("moe.grouped_ffn_up_grad", groupedFfnUpGrad);
  r.add("moe.grouped_ffn_down_grad", groupedFfnDownGrad);
}

} // namespace moec::rt::cpu
