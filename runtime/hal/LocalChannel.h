// LocalChannel.h - the channel of a run with one rank.
#ifndef MOEC_RUNTIME_HAL_LOCALCHANNEL_H
#define MOEC_RUNTIME_HAL_LOCALCHANNEL_H

#include "runtime/hal/Channel.h"

namespace moec::rt::hal {

/// One rank: a reduction leaves the data as it is, a gather or an all-to-all
/// copies the rank's own block (on the stream, so it works for any device
/// memory).
class LocalChannel final : public Channel {
public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  bool reaches(DeviceKind) const override { return true; }
  Status allReduce(Stream &stream, void *data, size_t count, DType dtype,
                   Reduction reduction) override;
  Status allGather(Stream &stream, const void *send, size_t bytes, void *receive) override;
  Status allToAll(Stream &stream, const void *send, const std::vector<size_t> &sendOffsets,
                  const std::vector<size_t> &sendBytes, void *receive,
                  const std::vector<size_t> &recvOffsets,
                  const std::vector<size_t> &recvBytes) override;
  Status allGatherHost(const void *send, size_t bytes, void *receive) override;
  void abort(int) override {}
  StatusOr<Channel *> group(const std::string &, int, int) override { return this; }
};

} // namespace moec::rt::hal

#endif // MOEC_RUNTIME_HAL_LOCALCHANNEL_H
