// LocalChannel.h - the channel of a run with one rank.
#ifndef MOEC_RUNTIME_HAL_LOCALCHANNEL_H
#define MOEC_RUNTIME_HAL_LOCALCHANNEL_H

#include "runtime/hal/Channel.h"

namespace moec::rt::hal {

/// One rank: a reduction leaves the data as it is, an all-to-all copies the
/// rank's own block (on the stream, so it works for any device memory).
class LocalChannel final : public Channel {
public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  Status allReduceSum(Stream &stream, void *data, size_t count, DType dtype) override;
  Status allToAll(Stream &stream, const void *send, const std::vector<size_t> &sendOffsets,
                  const std::vector<size_t> &sendBytes, void *receive,
                  const std::vector<size_t> &recvOffsets) override;
};

} // namespace moec::rt::hal

#endif // MOEC_RUNTIME_HAL_LOCALCHANNEL_H
