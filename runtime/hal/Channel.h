// Channel.h - collectives among the ranks of a run.
#ifndef MOEC_RUNTIME_HAL_CHANNEL_H
#define MOEC_RUNTIME_HAL_CHANNEL_H

#include "runtime/core/Status.h"
#include "runtime/core/Tensor.h"

#include <cstddef>
#include <vector>

namespace moec::rt::hal {

class Stream;

/// A group of ranks that exchange data (all ranks of a run, or one axis of
/// its device mesh). Collectives are queued on `stream`, like kernels, and
/// every rank of the group must call them in the same order.
class Channel {
public:
  virtual ~Channel() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  /// `data[i] = sum over ranks of data[i]`, in place.
  virtual Status allReduceSum(Stream &stream, void *data, size_t count, DType dtype) = 0;
  /// Rank r sends bytes [sendOffsets[q], + sendBytes[q]) of `send` to rank q,
  /// which receives them at recvOffsets[r] of `receive` (dropless dispatch's
  /// variable-size exchange; equal sizes are the plain all-to-all).
  virtual Status allToAll(Stream &stream, const void *send,
                          const std::vector<size_t> &sendOffsets,
                          const std::vector<size_t> &sendBytes, void *receive,
                          const std::vector<size_t> &recvOffsets) = 0;
};

} // namespace moec::rt::hal

#endif // MOEC_RUNTIME_HAL_CHANNEL_H
