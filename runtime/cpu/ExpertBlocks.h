// ExpertBlocks.h - which rows of an expert input belong to which expert.
#ifndef MOEC_RUNTIME_CPU_EXPERTBLOCKS_H
#define MOEC_RUNTIME_CPU_EXPERTBLOCKS_H

#include "runtime/core/Kernel.h"

#include <cstring>
#include <vector>

namespace moec::rt::cpu {

/// Capacity form `[E, C, ...]`: expert e owns rows [e·C, (e+1)·C). Grouped
/// form `[N, ...]` with group sizes: contiguous blocks in expert order;
/// `used` rows are owned, the rest is padding.
struct ExpertBlocks {
  std::vector<int64_t> first, count;
  int64_t used = 0;

  /// Zeroes the padding rows (those after `used`) of a `[rows, width]` output.
  void zeroPadding(float *out, int64_t rows, int64_t width) const {
    std::memset(out + used * width, 0, (rows - used) * width * sizeof(float));
  }
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

} // namespace moec::rt::cpu

#endif // MOEC_RUNTIME_CPU_EXPERTBLOCKS_H
