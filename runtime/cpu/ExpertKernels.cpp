// ExpertKernels.cpp - CPU kernels of routed, shared and LoRA experts.
#include "runtime/cpu/Bf16Storage.h"
#include "runtime/cpu/CpuKernels.h"
#include "runtime/cpu/ExpertBlocks.h"
#include "runtime/cpu/Ffn.h"

#include <cmath>
#include <cstring>
#include <vector>

namespace moec::rt::cpu {

namespace {
/// Row blocks of the experts: capacity form [E, C, d] or grouped form
/// [N, d] + group sizes. Calls `body(e, firstRow, rows, scratch)` per expert
/// (side by side or in turn: forEachExpert) and zeroes rows after the last
/// group.
template <typename Body>
Status forEachExpertBlock(const StepContext &s, const TensorRef &input, const TensorRef *groupSizes,
                          int64_t E, Body body) {
  auto blocks = expertBlocks(s, input, groupSizes, E);
  if (!blocks)
    return blocks.status();
  zeroRowsFrom(s.out(0), blocks->used);
  const std::vector<int64_t> &first = blocks->first, &count = blocks->count;
  forEachExpert(*blocks, [&](int64_t e) {
    static thread_local std::vector<float> scratch; // this thread's
    body(e, first[e], count[e], scratch);
  });
  return Status::ok();
}

Status groupedFfn(const StepContext &s) {
  auto precision = precisionOf(s);
  if (!precision)
    return precision.status();
  // Operands: input, w1, w2, [w3], [group_sizes] (segments say which).
  std::vector<int64_t> segments = s.ints("operandSegmentSizes");
  bool hasW3 = segments.size() == 5 && segments[3] == 1;
  bool hasSizes = segments.size() == 5 && segments[4] == 1;
  const TensorRef &x = s.in(0), &w1 = s.in(1), &w2 = s.in(2);
  const TensorRef *w3 = hasW3 ? &s.in(3) : nullptr;
  const TensorRef *sizes = hasSizes ? &s.in(3 + hasW3) : nullptr;
  int64_t E = w1.dim(0), F = w1.dim(1), d = w1.dim(2);
  Act act = parseActivation(s.str("activation"));
  return forEachExpertBlock(
      s, x, sizes, E,
      [&](int64_t e, int64_t first, int64_t rows, std::vector<float> &scratch) {
        FfnWeights w{w1.f32() + e * F * d, w2.f32() + e * d * F,
                     w3 ? w3->f32() + e * F * d : nullptr};
        ffnRows(x.f32() + first * d, s.out(0).f32() + first * d, rows, d, F, w, act, *precision,
                scratch);
      });
}

Status sharedExperts(const StepContext &s) {
  auto precision = precisionOf(s);
  if (!precision)
    return precision.status();
  std::vector<int64_t> segments = s.ints("operandSegmentSizes");
  bool hasW3 = segments.size() == 5 && segments[3] == 1;
  bool hasGate = segments.size() == 5 && segments[4] == 1;
  const TensorRef &x = s.in(0), &w1 = s.in(1), &w2 = s.in(2);
  int64_t T = x.dim(0), d = x.dim(1), F = w1.dim(0);
  FfnWeights w{w1.f32(), w2.f32(), hasW3 ? s.in(3).f32() : nullptr};
  static thread_local std::vector<float> scratch;
  float *y = s.out(0).f32();
  ffnRows(x.f32(), y, T, d, F, w, parseActivation(s.str("activation")), *precision, scratch);
  if (hasGate) {
    const float *g = s.in(3 + hasW3).f32();
    for (int64_t t = 0; t < T; ++t) {
      float dot = 0;
      for (int64_t i = 0; i < d; ++i)
        dot += x.f32()[t * d + i] * g[i];
      float gate = 1.0f / (1.0f + std::exp(-dot));
      for (int64_t i = 0; i < d; ++i)
        y[t * d + i] *= gate;
    }
  }
  return Status::ok();
}

Status loraExperts(const StepContext &s) {
  auto precision = precisionOf(s);
  if (!precision)
    return precision.status();
  std::vector<int64_t> segments = s.ints("operandSegmentSizes");
  if (segments.size() != 4)
    return s.error("missing operand segment sizes");
  int64_t numBase = segments[1], numAdapters = segments[2];
  bool hasSizes = segments[3] == 1;
  const TensorRef &x = s.in(0);
  const TensorRef &w1 = s.in(1), &w2 = s.in(2);
  const TensorRef *w3 = numBase == 3 ? &s.in(3) : nullptr;
  auto adapter = [&](int i) -> const TensorRef & { return s.in(1 + numBase + i); };
  const TensorRef *sizes = hasSizes ? &s.in(1 + numBase + numAdapters) : nullptr;
  int64_t F = w1.dim(0), d = w1.dim(1), E = adapter(0).dim(0),
          rank = adapter(0).dim(1);
  float scale = static_cast<float>(s.f64("alpha") / rank);
  Act act = parseActivation(s.str("activation"));
  return forEachExpertBlock(
      s, x, sizes, E,
      [&](int64_t e, int64_t first, int64_t rows, std::vector<float> &scratch) {
        auto lora = [&](int p, int64_t in, int64_t out) {
          Adapter a;
          a.A = adapter(2 * p).f32() + e * rank * in;
          a.B = adapter(2 * p + 1).f32() + e * out * rank;
          a.rank = rank;
          a.scale = scale;
          return a;
        };
        FfnWeights w{w1.f32(), w2.f32(), w3 ? w3->f32() : nullptr};
        w.a1 = lora(0, d, F);
        w.a2 = lora(1, F, d);
        if (w3)
          w.a3 = lora(2, d, F);
        ffnRows(x.f32() + first * d, s.out(0).f32() + first * d, rows, d, F, w, act, *precision,
                scratch);
      });
}
} // namespace

void registerExpertKernels(KernelTable &r) {
  r.add("moe.grouped_ffn", groupedFfn);
  r.add("moe.shared_experts", sharedExperts);
  r.add("moe.lora_experts", loraExperts);
}

} // namespace moec::rt::cpu
