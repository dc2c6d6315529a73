// CollectiveRounds.h - how many messages in sequence an all-reduce takes:
// the latency the cost model charges and the calibration divides by.
#ifndef MOEC_RUNTIME_CORE_COLLECTIVEROUNDS_H
#define MOEC_RUNTIME_CORE_COLLECTIVEROUNDS_H

#include <cstdint>

namespace moec::rt {

/// An all-reduce over `ranks` as NCCL runs it: a ring (2 (n - 1) messages
/// in sequence: reduce-scatter, then all-gather) or, where that is fewer, a
/// double binary tree (up the tree and down again, 2 ceil(log2 n)), which
/// NCCL picks for latency-bound sizes and large n. Either way each rank
/// sends about 2 (n - 1) / n of the payload.
inline int allReduceRounds(int64_t ranks) {
  if (ranks <= 1)
    return 0;
  int depth = 0;
  while ((int64_t(1) << depth) < ranks)
    ++depth;
  int64_t ring = 2 * (ranks - 1), tree = 2 * int64_t(depth);
  return static_cast<int>(ring < tree ? ring : tree);
}

} // namespace moec::rt

#endif // MOEC_RUNTIME_CORE_COLLECTIVEROUNDS_H
