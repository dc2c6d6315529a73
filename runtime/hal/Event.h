// Event.h - a point in a stream's work that other streams and the host can wait for.
#ifndef MOEC_RUNTIME_HAL_EVENT_H
#define MOEC_RUNTIME_HAL_EVENT_H

#include "runtime/core/Status.h"

namespace moec::rt::hal {

/// Recorded on a stream (Stream::record); complete once every piece of work
/// queued before the record has finished.
class Event {
public:
  virtual ~Event() = default;
  /// Blocks the host until the event is complete.
  virtual Status synchronize() = 0;
  /// Seconds between `start` and this event (both recorded and complete).
  virtual StatusOr<double> secondsSince(const Event &start) const = 0;
};

} // namespace moec::rt::hal

#endif // MOEC_RUNTIME_HAL_EVENT_H
