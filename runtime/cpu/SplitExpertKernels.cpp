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
  const TensorRef &x = s.in(0), &w1 = s.in(1);
  UpOperands o = upOperands(s);
  int64_t E = w1.dim(0), F = w1.dim(1), d = w1.dim(2), H = s.out(0).dim(-1);
  auto blocks = expertBlocks(s, x, o.sizes, E);
  if (!blocks)
    return blocks.status();
  // Stored in bf16: computed in fp32, then rounded.
  static thread_local std::vector<float> wide;
  int64_t rows = x.numel() / d;
  float *hidden = floatOutput(s.out(0), wide);
  blocks->zeroPadding(hidden, rows, H);
  static thread_local std::vector<float> wideX;
  const float *allX = floatsOf(x, wideX); // the rows may be stored in bf16
  forEachExpert(*blocks, [&](int64_t e) {
    const float *X = allX + blocks->first[e] * d;
    float *out = hidden + blocks->first[e] * H;
    int64_t M = blocks->count[e];
    gemm(false, true, M, F, d, 1.0f, X, d, w1.f32() + e * F * d, d, 0.0f, out, H);
    if (o.w3)
      gemm(false, true, M, F, d, 1.0f, X, d, o.w3->f32() + e * F * d, d, 0.0f, out + F, H);
  });
  storeFloats(s.out(0), hidden);
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
  auto problem = downProblem(s, /*hasSizes=*/s.numInputs() > 2);
  if (!problem)
    return problem.status();
  const DownProblem &p = *problem;
  const TensorRef &hidden = *p.hidden, &w2 = *p.w2;
  const ExpertBlocks &blocks = p.blocks;
  int64_t d = p.d, F = p.F, H = p.H;
  static thread_local std::vector<float> wide, wideY;
  float *y = floatOutput(s.out(0), wideY);
  blocks.zeroPadding(y, p.rows, d);
  const float *h = floatsOf(hidden, wide);
  forEachExpert(blocks, [&](int64_t e) {
    static thread_local std::vector<float> g; // this thread's
    int64_t M = blocks.count[e];
    g.resize(M * F);
    gatedActivation(h + blocks.first[e] * H, M, F, H, p.gated, p.act, g.data());
    gemm(false, true, M, d, F, 1.0f, g.data(), F, w2.f32() + e * d * F, F, 0.0f,
         y + blocks.first[e] * d, d);
  });
  storeFloats(s.out(0), y);
  return Status::ok();
}

Status groupedFfnDownGrad(const StepContext &s) {
  bool hasSizes = s.numInputs() == 4;
  auto problem = downProblem(s, hasSizes);
  if (!problem)
    return problem.status();
  const DownProblem &p = *problem;
  const TensorRef &hidden = *p.hidden, &w2 = *p.w2, &dy = s.in(hasSizes ? 3 : 2);
  const ExpertBlocks &blocks = p.blocks;
  int64_t d = p.d, F = p.F, H = p.H;
  static thread_local std::vector<float> wide, wideGrad;
  float *dhidden = floatOutput(s.out(0), wideGrad); // bf16: rounded at the end
  blocks.zeroPadding(dhidden, p.rows, H);
  const float *allHidden = floatsOf(hidden, wide);
  forEachExpert(blocks, [&](int64_t e) {
    static thread_local std::vector<float> a, da, g, dg; // this thread's
    int64_t M = blocks.count[e];
    const float *h = allHidden + blocks.first[e] * H;
    const float *dY = dy.f32() + blocks.first[e] * d;
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
    gemm(true, false, d, F, M, 1.0f, dY, d, gp, F, 0.0f, s.out(1).f32() + e * d * F, F);
    gemm(false, false, M, F, d, 1.0f, dY, d, w2.f32() + e * d * F, F, 0.0f, dgp, F);
    float *dh = dhidden + blocks.first[e] * H;
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
  });
  storeFloats(s.out(0), dhidden);
  return Status::ok();
}

Status groupedFfnUpGrad(const StepContext &s) {
  const TensorRef &x = s.in(0), &w1 = s.in(1);
  UpOperands o = upOperands(s);
  const TensorRef &dhidden = s.in(o.next);
  int64_t E = w1.dim(0), F = w1.dim(1), d = w1.dim(2), H = dhidden.dim(-1);
  auto blocks = expertBlocks(s, x, o.sizes, E);
  if (!blocks)
    return blocks.status();
  float *dx = s.out(0).f32();
  int64_t rows = x.numel() / d;
  blocks->zeroPadding(dx, rows, d);
  // Either operand may be stored in bf16.
  static thread_local std::vector<float> wideX, wideGrad;
  const float *allX = floatsOf(x, wideX), *allGrad = floatsOf(dhidden, wideGrad);
  forEachExpert(*blocks, [&](int64_t e) {
    int64_t M = blocks->count[e];
    const float *X = allX + blocks->first[e] * d;
    const float *dH = allGrad + blocks->first[e] * H;
    float *dX = dx + blocks->first[e] * d;
    // dW1 = dH1ᵀ X, dX = dH1 W1 (+ the same for the gated half).
    gemm(true, false, F, d, M, 1.0f, dH, H, X, d, 0.0f, s.out(1).f32() + e * F * d, d);
    gemm(false, false, M, d, F, 1.0f, dH, H, w1.f32() + e * F * d, d, 0.0f, dX, d);
    if (o.w3) {
      gemm(true, false, F, d, M, 1.0f, dH + F, H, X, d, 0.0f, s.out(2).f32() + e * F * d, d);
      gemm(false, false, M, d, F, 1.0f, dH + F, H, o.w3->f32() + e * F * d, d, 1.0f, dX, d);
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
