// LocalChannel.cpp - collectives of a one-rank run.
#include "runtime/hal/LocalChannel.h"
#include "runtime/hal/Stream.h"

#include <cstring>

namespace moec::rt::hal {

Status LocalChannel::allReduce(Stream &, void *, size_t, DType, Reduction) { return Status::ok(); }

Status LocalChannel::allGather(Stream &stream, const void *send, size_t bytes, void *receive) {
  if (bytes == 0 || send == receive)
    return Status::ok();
  return stream.copy(receive, send, bytes);
}

Status LocalChannel::allToAll(Stream &stream, const void *send,
                              const std::vector<size_t> &sendOffsets,
                              const std::vector<size_t> &sendBytes, void *receive,
                              const std::vector<size_t> &recvOffsets,
                              const std::vector<size_t> &recvBytes) {
  if (sendOffsets.size() != 1 || sendBytes.size() != 1 || recvOffsets.size() != 1 ||
      recvBytes.size() != 1)
    return Status::error(
        "all-to-all over one rank needs one offset and size per side, got " +
        std::to_string(sendOffsets.size()) + ", " + std::to_string(sendBytes.size()) + ", " +
        std::to_string(recvOffsets.size()) + " and " + std::to_string(recvBytes.size()));
  if (sendBytes[0] != recvBytes[0])
    return Status::error("all-to-all over one rank: it sends itself " +
                         std::to_string(sendBytes[0]) + " bytes but expects " +
                         std::to_string(recvBytes[0]));
  if (sendBytes[0] == 0)
    return Status::ok();
  return stream.copy(static_cast<char *>(receive) + recvOffsets[0],
                     static_cast<const char *>(send) + sendOffsets[0], sendBytes[0]);
}

Status LocalChannel::allGatherHost(const void *send, size_t bytes, void *receive) {
  if (bytes && send != receive)
    std::memmove(receive, send, bytes);
  return Status::ok();
}

} // namespace moec::rt::hal
