// Stream.h - an ordered queue of a device's work: copies and kernels.
#ifndef MOEC_RUNTIME_HAL_STREAM_H
#define MOEC_RUNTIME_HAL_STREAM_H

#include "runtime/core/Status.h"
#include "runtime/hal/Graph.h"

#include <cstddef>
#include <memory>

namespace moec::rt::hal {

class Event;

/// Work on one stream runs in the order it was queued; a call may return
/// before the work is done (the host sees the results after `synchronize()`
/// or an event). Addresses are Buffer addresses of the stream's device,
/// possibly offset; `host` pointers are ordinary host memory, which must stay
/// valid until the stream has synchronized.
class Stream {
public:
  virtual ~Stream() = default;

  /// Device to device.
  virtual Status copy(void *destination, const void *source, size_t bytes) = 0;
  /// Host to device.
  virtual Status upload(void *destination, const void *host, size_t bytes) = 0;
  /// Device to host.
  virtual Status download(void *host, const void *source, size_t bytes) = 0;
  virtual Status fillZero(void *destination, size_t bytes) = 0;

  /// Marks the current end of the queue.
  virtual Status record(Event &event) = 0;
  /// Work queued after this call starts once `event` is complete.
  virtual Status wait(const Event &event) = 0;
  /// Blocks the host until everything queued has finished.
  virtual Status synchronize() = 0;

  /// Whether this stream can record its work into a Graph.
  virtual bool supportsCapture() const { return false; }
  /// From here on, device work (copies within the device, fills, kernel
  /// launches) is recorded instead of run; host copies and waits are
  /// refused until endCapture.
  virtual Status beginCapture() { return Status::error("this stream cannot record graphs"); }
  /// Stops recording and returns what was recorded.
  virtual StatusOr<std::unique_ptr<Graph>> endCapture() {
    return Status::error("this stream cannot record graphs");
  }
};

} // namespace moec::rt::hal

#endif // MOEC_RUNTIME_HAL_STREAM_H
