// ExpertBlocks.h - which rows of an expert input belong to which expert.
#ifndef MOEC_RUNTIME_CPU_EXPERTBLOCKS_H
#define MOEC_RUNTIME_CPU_EXPERTBLOCKS_H

#include "runtime/core/Kernel.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <vector>

namespace moec::rt::cpu {

/// Capacity form `[E, C, ...]`: expert e owns rows [e·C, (e+1)·C). Grouped
/// form `[N, ...]` with group sizes: contiguous blocks in expert order;
/// `used` rows are owned, the rest is padding.
struct ExpertBlocks {
  std::vector<int64_t> first, count;
  int64_t used = 0; // rows after these are padding
};

inline StatusOr<ExpertBlocks> expertBlocks(const StepContext &s, const TensorRef &input,
                                           const TensorRef *groupSizes, int64_t E) {
  ExpertBlocks blocks;
  blocks.first.resize(E);
  blocks.count.resize(E);
  int64_t rows = input.numel() / input.dim(-1);
  for (int64_t e = 0; e < E; ++e) {
    int64_t count = groupSizes ? groupSizes->i32()[e] : input.dim(1);
    if (count < 0 || blocks.used + count > rows)
      return s.error("group sizes exceed the " + std::to_string(rows) + " rows of the input");
    blocks.first[e] = groupSizes ? blocks.used : e * input.dim(1);
    blocks.count[e] = count;
    blocks.used += count;
  }
  return blocks;
}

/// Runs `body(e)` for every expert. With at least as many experts as
/// threads they run side by side, the largest blocks first, each on one
/// thread (its GEMMs and loops then run on that thread alone: oneDNN and
/// OpenMP do not nest), so that small per-expert problems do not each pay
/// for spreading over every core; with fewer experts, one after the other,
/// each GEMM on every thread. Each expert writes its own rows and weights,
/// so the order changes no result.
template <typename Body> void forEachExpert(const ExpertBlocks &blocks, Body body) {
  const int64_t E = static_cast<int64_t>(blocks.count.size());
  const int threads = omp_get_max_threads();
  if (threads == 1 || E < threads || omp_in_parallel()) {
    for (int64_t e = 0; e < E; ++e)
      body(e);
    return;
  }
  std::vector<int64_t> order(E);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return blocks.count[a] > blocks.count[b]; });
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t i = 0; i < E; ++i)
    body(order[i]);
}

} // namespace moec::rt::cpu

#endif // MOEC_RUNTIME_CPU_EXPERTBLOCKS_H
