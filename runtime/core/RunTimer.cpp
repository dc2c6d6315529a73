// RunTimer.cpp - device events that time the steps of one run.
#include "runtime/core/RunTimer.h"

#include <chrono>

namespace moec::rt {

Status RunTimer::start(hal::Stream &stream) {
  used_ = 0;
  seconds_.clear();
  hostStart_ =
      std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  StatusOr<size_t> first = mark(stream);
  return first ? Status::ok() : first.status();
}

StatusOr<size_t> RunTimer::mark(hal::Stream &stream) {
  if (used_ == events_.size()) {
    auto event = device_.createEvent();
    if (!event)
      return Status::error("timing the steps: " + event.status().message());
    events_.push_back(std::move(*event));
  }
  hal::Event &event = *events_[used_];
  if (Status s = stream.record(event); !s)
    return Status::error("timing the steps: " + s.message());
  return used_++;
}

Status RunTimer::finish() {
  if (used_ == 0)
    return Status::error("timing the steps: no run was started");
  // The last mark completes after every other.
  if (Status s = events_[used_ - 1]->synchronize(); !s)
    return s;
  seconds_.assign(used_, 0.0);
  for (size_t n = 1; n < used_; ++n) {
    StatusOr<double> since = events_[n]->secondsSince(*events_[0]);
    if (!since)
      return Status::error("timing the steps: " + since.status().message());
    seconds_[n] = *since;
  }
  return Status::ok();
}

} // namespace moec::rt
