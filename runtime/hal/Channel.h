// Channel.h - collectives among the ranks of a run.
#ifndef MOEC_RUNTIME_HAL_CHANNEL_H
#define MOEC_RUNTIME_HAL_CHANNEL_H

#include "runtime/core/Status.h"
#include "runtime/core/Tensor.h"
#include "runtime/hal/DeviceKind.h"

#include <cstddef>
#include <string>
#include <vector>

namespace moec::rt::hal {

class Stream;

/// How an all-reduce combines the ranks' values.
enum class Reduction { sum, average };

/// A group of ranks that exchange data (all ranks of a run, or one axis of
/// its device mesh). Collectives are queued on `stream`, like kernels, and
/// every rank of the group must call them in the same order.
class Channel {
public:
  virtual ~Channel() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// Whether the collectives can read and write the memory of a device of
  /// this kind (the mpi channel moves host memory).
  virtual bool reaches(DeviceKind kind) const = 0;

  /// `data[i]` becomes the sum (or the mean) over ranks of `data[i]`, in
  /// place, with the same bits on every rank. f32 and i32.
  virtual Status allReduce(Stream &stream, void *data, size_t count, DType dtype,
                           Reduction reduction) = 0;
  /// Rank r's `bytes` bytes of `send` land at `receive + r * bytes`, on every
  /// rank.
  virtual Status allGather(Stream &stream, const void *send, size_t bytes, void *receive) = 0;
  /// Rank r sends bytes [sendOffsets[q], + sendBytes[q]) of `send` to rank q,
  /// which receives them at recvOffsets[r] of `receive`, expecting
  /// recvBytes[r] of them (dropless dispatch's variable-size exchange, whose
  /// sizes every rank knows from the gathered counts; equal sizes are the
  /// plain all-to-all).
  virtual Status allToAll(Stream &stream, const void *send, const std::vector<size_t> &sendOffsets,
                          const std::vector<size_t> &sendBytes, void *receive,
                          const std::vector<size_t> &recvOffsets,
                          const std::vector<size_t> &recvBytes) = 0;
  /// allGather of host memory, outside any stream: for setup (every rank
  /// checking that the others loaded the same plan).
  virtual Status allGatherHost(const void *send, size_t bytes, void *receive) = 0;
  /// Ends every rank of the run (after an error on one of them, so that the
  /// others do not wait for it in a collective).
  virtual void abort(int exitCode) = 0;
  /// The channel of this rank's group when the ranks split into groups by
  /// `color` (ranks of one color form a group, ordered by `key`). Every rank
  /// calls it, in the same order; the parent owns the group and returns it
  /// again for the same `name` (one split per name).
  virtual StatusOr<Channel *> group(const std::string &name, int color, int key) = 0;

protected:
  /// An all-to-all's lists must hold one offset and size per rank.
  Status checkPerRank(const std::vector<size_t> &sendOffsets, const std::vector<size_t> &sendBytes,
                      const std::vector<size_t> &recvOffsets,
                      const std::vector<size_t> &recvBytes) const {
    const size_t n = static_cast<size_t>(size());
    if (sendOffsets.size() == n && sendBytes.size() == n && recvOffsets.size() == n &&
        recvBytes.size() == n)
      return Status::ok();
    return Status::error("all-to-all over " + std::to_string(n) +
                         " ranks needs one offset and size per rank");
  }
};

} // namespace moec::rt::hal

#endif // MOEC_RUNTIME_HAL_CHANNEL_H
