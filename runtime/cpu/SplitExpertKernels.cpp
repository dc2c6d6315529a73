// SplitExpertKernels.cpp - the up and down halves of the routed experts and
// their gradients (training graphs, --moe-split-expert-ffn).
#include "runtime/core/Bf16.h"
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
  int64_t E = w1.dim(0), F = w1.dim(1), d = w1.dim(2);
  auto blocks = expertBlocks(s, x, o.sizes, E);
  if (!blocks)
    return blocks.status();
  zeroRowsFrom(s.out(0), blocks->used);
  forEachExpert(*blocks, [&](int64_t e) {
    // Either side may be stored in bf16; bf16 products round X once.
    static thread_local std::vector<uint16_t> roundedX; // this thread's
    int64_t first = blocks->first[e], M = blocks->count[e];
    MatrixIn X = rowsOperand(x, first, M, *precision, roundedX);
    MatrixOut out = rowsResult(s.out(0), first);
    gemm(false, true, M, F, d, 1.0f, X, MatrixIn(w1.f32() + e * F * d, d), 0.0f, out, *precision);
    if (o.w3)
      gemm(false, true, M, F, d, 1.0f, X, MatrixIn(o.w3->f32() + e * F * d, d), 0.0f, out.at(0, F),
           *precision);
  });
  return Status::ok();
}

/// Element access for rows stored in fp32 or bf16 (as bits): kernels
/// written once over both read with load() and write with store().
inline float load(const float *p, int64_t i) { return p[i]; }
inline float load(const uint16_t *p, int64_t i) { return bf16Value(p[i]); }
inline void store(float *p, int64_t i, float v) { p[i] = v; }
inline void store(uint16_t *p, int64_t i, float v) { p[i] = bf16Bits(v); }

/// Calls `fn` with rows from `first` of `t` as `const float *` or, stored in
/// bf16, `const uint16_t *`.
template <typename Fn> void withRows(const TensorRef &t, int64_t first, Fn fn) {
  if (t.dtype == DType::bf16)
    fn(static_cast<const uint16_t *>(t.data) + first * t.dim(-1));
  else
    fn(static_cast<const float *>(t.f32()) + first * t.dim(-1));
}

/// Calls `fn` with rows from `first` of `t` as `float *` or, stored in bf16,
/// `uint16_t *` (written through store(), which rounds).
template <typename Fn> void withOutputRows(const TensorRef &t, int64_t first, Fn fn) {
  if (t.dtype == DType::bf16)
    fn(static_cast<uint16_t *>(t.data) + first * t.dim(-1));
  else
    fn(t.f32() + first * t.dim(-1));
}

/// The row loops below, compiled per instruction set (MOEC_VECTOR_CLONES):
/// each row's F elements are one vectorised loop.

/// One row: g = act(h1) [⊙ h3] (h3 null: ungated).
template <typename Kind, typename In, typename Out>
MOEC_VECTOR_CLONES void gatedActivationRow(Kind kind, const In *h1, const In *h3, Out *g,
                                           int64_t F) {
  if (h3)
    for (int64_t j = 0; j < F; ++j)
      store(g, j, activate(kind, load(h1, j)) * load(h3, j));
  else
    for (int64_t j = 0; j < F; ++j)
      store(g, j, activate(kind, load(h1, j)));
}

/// One row: a = act(h1), da = act'(h1), g = a [⊙ h3].
template <typename Kind, typename In, typename G>
MOEC_VECTOR_CLONES void activationWithSlopeRow(Kind kind, const In *h1, const In *h3, float *a,
                                               float *da, G *g, int64_t F) {
  for (int64_t j = 0; j < F; ++j)
    activateWithGrad(kind, load(h1, j), a[j], da[j]);
  if (h3)
    for (int64_t j = 0; j < F; ++j)
      store(g, j, a[j] * load(h3, j));
  else
    for (int64_t j = 0; j < F; ++j)
      store(g, j, a[j]);
}

/// One row: dh1 = dg ⊙ h3 ⊙ da and dh3 = dg ⊙ a (ungated: dh1 = dg ⊙ da).
template <typename In, typename Out>
MOEC_VECTOR_CLONES void preActivationGradientRow(const In *h3, const float *a, const float *da,
                                                 const float *dg, Out *dh1, Out *dh3, int64_t F) {
  if (h3)
    for (int64_t j = 0; j < F; ++j) {
      store(dh1, j, dg[j] * load(h3, j) * da[j]);
      store(dh3, j, dg[j] * a[j]);
    }
  else
    for (int64_t j = 0; j < F; ++j)
      store(dh1, j, dg[j] * da[j]);
}

/// g = act(h1) [⊙ h3] for M rows of `hidden` (row stride H) into `g` (M × F).
template <typename In, typename Out>
void gatedActivation(const In *hidden, int64_t M, int64_t F, int64_t H, bool gated, Act act,
                     Out *g) {
  withActivation(act, [&](auto kind) {
#pragma omp parallel for
    for (int64_t r = 0; r < M; ++r)
      gatedActivationRow(kind, hidden + r * H, gated ? hidden + r * H + F : nullptr, g + r * F, F);
  });
}

/// act(h1) and act'(h1) into `a` and `da` (M × F) in one pass, and
/// g = act(h1) [⊙ h3] into `g`.
template <typename In, typename G>
void activationWithSlope(const In *hidden, int64_t M, int64_t F, int64_t H, bool gated, Act act,
                         float *a, float *da, G *g) {
  withActivation(act, [&](auto kind) {
#pragma omp parallel for
    for (int64_t r = 0; r < M; ++r)
      activationWithSlopeRow(kind, hidden + r * H, gated ? hidden + r * H + F : nullptr, a + r * F,
                             da + r * F, g + r * F, F);
  });
}

/// The pre-activations' gradient from the activation's `dg`: dh1 = dg ⊙ h3
/// ⊙ act'(h1) and dh3 = dg ⊙ act(h1) (ungated: dh1 = dg ⊙ act'(h1)), rows
/// of stride H.
template <typename In, typename Out>
void preActivationGradient(const In *hidden, const float *a, const float *da, const float *dg,
                           int64_t M, int64_t F, int64_t H, bool gated, Out *dh) {
#pragma omp parallel for
  for (int64_t r = 0; r < M; ++r)
    preActivationGradientRow(gated ? hidden + r * H + F : nullptr, a + r * F, da + r * F,
                             dg + r * F, dh + r * H, dh + r * H + F, F);
}

/// A row block's scratch for an operand of products in `precision`: fp32,
/// or bf16 bits for bf16 products (rounded once, as it is computed).
struct OperandScratch {
  std::vector<float> values;
  std::vector<uint16_t> bits;
  /// Room for `n` elements; calls fn with the pointer to write.
  template <typename Fn> MatrixIn make(Precision precision, int64_t rows, int64_t cols, Fn fn) {
    if (precision == Precision::bf16) {
      bits.resize(static_cast<size_t>(rows * cols));
      fn(bits.data());
      return MatrixIn(bits.data(), cols);
    }
    values.resize(static_cast<size_t>(rows * cols));
    fn(values.data());
    return MatrixIn(values.data(), cols);
  }
};

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
    static thread_local OperandScratch g; // this thread's
    int64_t first = blocks.first[e], M = blocks.count[e];
    MatrixIn activated = g.make(*precision, M, F, [&](auto *out) {
      withRows(hidden, first,
               [&](const auto *h) { gatedActivation(h, M, F, H, p.gated, p.act, out); });
    });
    gemm(false, true, M, d, F, 1.0f, activated, MatrixIn(w2.f32() + e * d * F, F), 0.0f,
         rowsResult(s.out(0), first), *precision);
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
    static thread_local std::vector<float> a, da, dg; // this thread's
    static thread_local OperandScratch g;
    static thread_local std::vector<uint16_t> roundedDY;
    int64_t first = blocks.first[e], M = blocks.count[e];
    for (auto *buffer : {&a, &da, &dg})
      buffer->resize(M * F);
    // Plain pointers: the scratch vectors are this thread's.
    float *ap = a.data(), *dap = da.data(), *dgp = dg.data();
    MatrixIn activated = g.make(*precision, M, F, [&](auto *out) {
      withRows(hidden, first, [&](const auto *h) {
        activationWithSlope(h, M, F, H, p.gated, p.act, ap, dap, out);
      });
    });
    // dW2 = dYᵀ g; dg = dY W2.
    MatrixIn dY = rowsOperand(dy, first, M, *precision, roundedDY); // read twice
    gemm(true, false, d, F, M, 1.0f, dY, activated, 0.0f, MatrixOut(s.out(1).f32() + e * d * F, F),
         *precision);
    gemm(false, false, M, F, d, 1.0f, dY, MatrixIn(w2.f32() + e * d * F, F), 0.0f,
         MatrixOut(dgp, F), *precision);
    withRows(hidden, first, [&](const auto *h) {
      withOutputRows(s.out(0), first, [&](auto *dh) {
        preActivationGradient(h, ap, dap, dgp, M, F, H, p.gated, dh);
      });
    });
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
  int64_t E = w1.dim(0), F = w1.dim(1), d = w1.dim(2);
  auto blocks = expertBlocks(s, x, o.sizes, E);
  if (!blocks)
    return blocks.status();
  zeroRowsFrom(s.out(0), blocks->used);
  forEachExpert(*blocks, [&](int64_t e) {
    // Either operand may be stored in bf16; bf16 products round X once.
    static thread_local std::vector<uint16_t> roundedX, roundedGrad; // this thread's
    int64_t first = blocks->first[e], M = blocks->count[e];
    MatrixIn X = rowsOperand(x, first, M, *precision, roundedX);
    MatrixIn dH = rowsOperand(dhidden, first, M, *precision, roundedGrad);
    MatrixOut dX(s.out(0).f32() + first * d, d);
    // dW1 = dH1ᵀ X, dX = dH1 W1 (+ the same for the gated half).
    gemm(true, false, F, d, M, 1.0f, dH, X, 0.0f, MatrixOut(s.out(1).f32() + e * F * d, d),
         *precision);
    gemm(false, false, M, d, F, 1.0f, dH, MatrixIn(w1.f32() + e * F * d, d), 0.0f, dX, *precision);
    if (o.w3) {
      gemm(true, false, F, d, M, 1.0f, dH.at(0, F), X, 0.0f,
           MatrixOut(s.out(2).f32() + e * F * d, d), *precision);
      gemm(false, false, M, d, F, 1.0f, dH.at(0, F), MatrixIn(o.w3->f32() + e * F * d, d), 1.0f, dX,
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
