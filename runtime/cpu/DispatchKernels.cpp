// DispatchKernels.cpp - CPU kernels of slot assignment, dispatch and combine.
#include "runtime/cpu/Bf16Storage.h"
#include "runtime/cpu/CpuKernels.h"
#include "runtime/cpu/OperandChecks.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <vector>

namespace moec::rt::cpu {

namespace {
Status assignSlots(const StepContext &s) {
  const TensorRef &weights = s.in(0), &indices = s.in(1);
  int64_t T = weights.dim(0), K = weights.dim(1), E = s.i64("num_experts"),
          C = s.i64("capacity");
  if (Status st = checkIndices(s, indices, E); !st)
    return st;
  // Assignment a = k * T + t: slot-major order, slot 0 choices first.
  std::vector<int64_t> order(T * K);
  std::iota(order.begin(), order.end(), 0);
  auto weightOf = [&](int64_t a) { return weights.f32()[(a % T) * K + a / T]; };
  if (s.str("priority") == "score")
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
      return weightOf(a) > weightOf(b);
    });
  int32_t *slotTokens = s.out(0).i32();
  float *slotGates = s.out(1).f32();
  int32_t *load = s.out(2).i32();
  std::fill(slotTokens, slotTokens + E * C, -1);
  std::fill(slotGates, slotGates + E * C, 0.0f);
  std::fill(load, load + E, 0);
  for (int64_t a : order) {
    int64_t t = a % T, k = a / T;
    int32_t e = indices.i32()[t * K + k];
    if (e < 0)
      continue;
    int64_t position = load[e]++;
    if (position < C) {
      slotTokens[e * C + position] = static_cast<int32_t>(t);
      slotGates[e * C + position] = weights.f32()[t * K + k];
    }
  }
  return Status::ok();
}

Status sortByExpert(const StepContext &s) {
  const TensorRef &weights = s.in(0), &indices = s.in(1);
  int64_t T = weights.dim(0), K = weights.dim(1), E = s.i64("num_experts");
  if (Status st = checkIndices(s, indices, E); !st)
    return st;
  int32_t *sizes = s.out(2).i32();
  std::fill(sizes, sizes + E, 0);
  for (int64_t i = 0; i < T * K; ++i)
    if (indices.i32()[i] >= 0)
      ++sizes[indices.i32()[i]];
  std::vector<int64_t> next(E, 0);
  for (int64_t e = 1; e < E; ++e)
    next[e] = next[e - 1] + sizes[e - 1];
  int64_t invalid = next[E - 1] + sizes[E - 1];
  int32_t *tokens = s.out(0).i32();
  float *gates = s.out(1).f32();
  for (int64_t t = 0; t < T; ++t)
    for (int64_t k = 0; k < K; ++k) {
      int32_t e = indices.i32()[t * K + k];
      int64_t row = e >= 0 ? next[e]++ : invalid++;
      tokens[row] = e >= 0 ? static_cast<int32_t>(t) : -1;
      gates[row] = e >= 0 ? weights.f32()[t * K + k] : 0.0f;
    }
  return Status::ok();
}

Status dispatch(const StepContext &s) {
  const TensorRef &x = s.in(0), &slots = s.in(1);
  int64_t T = x.dim(0), d = x.dim(1), n = slots.numel();
  if (Status bad = checkSlotTokens(s, slots, T); !bad)
    return bad;
  float *rows = s.out(0).f32();
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i) {
    int32_t t = slots.i32()[i];
    if (t < 0)
      std::memset(rows + i * d, 0, d * sizeof(float));
    else
      std::memcpy(rows + i * d, x.f32() + t * d, d * sizeof(float));
  }
  return Status::ok();
}

/// Slots scatter-add into their tokens' rows: the threads split the columns
/// (a block each, in whole cache lines of 16 floats), and each adds the
/// slots in order, so the sums are those of one thread, whatever the thread
/// count.
Status combine(const StepContext &s) {
  const TensorRef &outputs = s.in(0), &gates = s.in(1), &slots = s.in(2);
  TensorRef &y = s.out(0);
  int64_t T = y.dim(0), d = y.dim(1), n = slots.numel();
  if (Status bad = checkSlotTokens(s, slots, T); !bad)
    return bad;
  std::memset(y.data, 0, y.bytes());
  static thread_local std::vector<float> wide;
  const float *rows = floatsOf(outputs, wide); // the experts' outputs may be bf16
  const int64_t lines = (d + 15) / 16, threads = omp_get_max_threads();
  const int64_t columns = 16 * ((lines + threads - 1) / threads);
  const int64_t chunks = (d + columns - 1) / columns;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * columns, end = std::min(d, begin + columns);
    for (int64_t i = 0; i < n; ++i) {
      int32_t t = slots.i32()[i];
      if (t < 0)
        continue;
      float gate = gates.f32()[i];
      const float *row = rows + i * d;
      float *dst = y.f32() + t * d;
      for (int64_t j = begin; j < end; ++j)
        dst[j] += gate * row[j];
    }
  }
  return Status::ok();
}

/// Row s of the input times gate s.
Status scaleRows(const StepContext &s) {
  const TensorRef &x = s.in(0), &gates = s.in(1);
  int64_t n = gates.numel(), d = n ? x.numel() / n : 0;
  const float *in = x.f32(), *g = gates.f32();
  float *out = s.out(0).f32();
#pragma omp parallel for
  for (int64_t r = 0; r < n; ++r)
    for (int64_t j = 0; j < d; ++j)
      out[r * d + j] = g[r] * in[r * d + j];
  return Status::ok();
}

Status routingStats(const StepContext &s) {
  const TensorRef &slots = s.in(0);
  int64_t E = s.i64("num_experts"), T = s.i64("num_tokens");
  int32_t *load = s.out(0).i32();
  std::fill(load, load + E, 0);
  int64_t kept = 0;
  for (int64_t i = 0; i < slots.numel(); ++i)
    kept += slots.i32()[i] >= 0;
  float dropped = 0;
  if (s.numInputs() > 1) {
    const TensorRef &indices = s.in(1);
    int64_t assigned = 0;
    for (int64_t i = 0; i < indices.numel(); ++i) {
      int32_t e = indices.i32()[i];
      if (e >= 0 && e < E) {
        ++load[e];
        ++assigned;
      }
    }
    dropped = assigned ? 1.0f - static_cast<float>(kept) / assigned : 0.0f;
  } else {
    int64_t C = slots.numel() / E;
    std::vector<bool> routed(T, false);
    for (int64_t i = 0; i < slots.numel(); ++i) {
      int32_t t = slots.i32()[i];
      if (t >= 0 && t < T) {
        ++load[i / C];
        routed[t] = true;
      }
    }
    int64_t unrouted = std::count(routed.begin(), routed.end(), false);
    dropped = static_cast<float>(unrouted) / T;
  }
  *s.out(1).f32() = dropped;
  return Status::ok();
}
} // namespace

void registerDispatchKernels(KernelTable &r) {
  r.add("moe.assign_slots", assignSlots);
  r.add("moe.sort_by_expert", sortByExpert);
  r.add("moe.dispatch", dispatch);
  r.add("moe.combine", combine);
  r.add("moe.scale_rows", scaleRows);
  r.add("moe.routing_stats", routingStats);
}

} // namespace moec::rt::cpu
