// RunTimer.h - device events that time the steps of one run, read after it.
#ifndef MOEC_RUNTIME_CORE_RUNTIMER_H
#define MOEC_RUNTIME_CORE_RUNTIMER_H

#include "runtime/hal/Device.h"
#include "runtime/hal/Event.h"
#include "runtime/hal/Stream.h"

#include <memory>
#include <vector>

namespace moec::rt {

/// Marks in a stream's work (events recorded between steps, and between a
/// step's kernel launches), read once the run has finished: the steps are
/// queued as they are without timing, with no host synchronisation between
/// them, so a GPU's timeline shows each kernel as it ran. On host devices
/// (cpu, cuda-emu) a mark is the host's clock when the work before it ended.
/// The events are kept from run to run.
class RunTimer {
public:
  explicit RunTimer(hal::Device &device) : device_(device) {}

  /// Forgets the last run's marks and marks this run's start.
  Status start(hal::Stream &stream);
  /// Marks the current end of the stream's work; returns the mark's number.
  StatusOr<size_t> mark(hal::Stream &stream);
  /// Waits until every mark is complete and reads them.
  Status finish();

  /// After finish(): seconds from the run's start to mark `n`.
  double secondsAt(size_t n) const { return seconds_[n]; }
  /// The host's steady clock (seconds since its epoch) when the run was
  /// started: marks are placed on the host's time line from it.
  double hostStart() const { return hostStart_; }

private:
  hal::Device &device_;
  std::vector<std::unique_ptr<hal::Event>> events_; // the first `used_` are this run's
  size_t used_ = 0;
  std::vector<double> seconds_;
  double hostStart_ = 0;
};

} // namespace moec::rt

#endif // MOEC_RUNTIME_CORE_RUNTIMER_H
